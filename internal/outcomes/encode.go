package outcomes

import (
	"encoding/json"
	"strconv"
	"time"
)

// The outcome event is encoded by appending (AppendJSON), not by
// json.Marshal: Marshal's reflection was about 7 µs of the ~10 µs the
// outcome hook cost per message (docs/performance.md §1). The output is
// byte for byte what json.Marshal(ev) produces (TestAppendJSONEqualsMarshal
// checks a table of outcomes and random strings): same field order, same
// omitempty rules, same string escaping (a string that needs any escaping
// is quoted by json.Marshal itself), time in RFC 3339 with nanoseconds.

// eventSizeHint is the initial buffer of one event: a typical outcome is
// 600–900 bytes.
const eventSizeHint = 1024

// AppendJSON appends ev as JSON, equal to json.Marshal(ev), to dst.
func (ev *Event) AppendJSON(dst []byte) []byte {
	b := append(dst, `{"specversion":`...)
	b = appendString(b, ev.SpecVersion)
	b = append(b, `,"type":`...)
	b = appendString(b, ev.Type)
	b = append(b, `,"source":`...)
	b = appendString(b, ev.Source)
	b = append(b, `,"id":`...)
	b = appendString(b, ev.ID)
	b = append(b, `,"subject":`...)
	b = appendString(b, ev.Subject)
	b = append(b, `,"time":`...)
	b = appendTime(b, ev.Time)
	b = append(b, `,"datacontenttype":`...)
	b = appendString(b, ev.DataContentType)
	b = append(b, `,"data":`...)
	b = ev.Data.appendJSON(b)
	return append(b, '}')
}

func (d *Data) appendJSON(b []byte) []byte {
	b = append(b, `{"action_id":`...)
	b = appendString(b, d.ActionID)
	b = append(b, `,"handler":`...)
	b = appendString(b, d.Handler)
	b = append(b, `,"status":`...)
	b = appendString(b, string(d.Status))
	if d.Reason != "" {
		b = append(b, `,"reason":`...)
		b = appendString(b, string(d.Reason))
	}
	if d.Error != "" {
		b = append(b, `,"error":`...)
		b = appendString(b, d.Error)
	}
	b = append(b, `,"attempt":`...)
	b = strconv.AppendInt(b, int64(d.Attempt), 10)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendInt(b, d.DurationMS, 10)
	if d.NextAttemptAt != nil {
		b = append(b, `,"next_attempt_at":`...)
		b = appendTime(b, *d.NextAttemptAt)
	}
	if dl := d.DeadLetter; dl != nil {
		b = append(b, `,"dead_letter":{"stream":`...)
		b = appendString(b, dl.Stream)
		b = append(b, `,"seq":`...)
		b = strconv.AppendUint(b, dl.Seq, 10)
		b = append(b, '}')
	}
	if r := d.Rule; r != nil {
		b = append(b, `,"rule":{`...)
		if r.ID != "" {
			b = append(b, `"id":`...)
			b = appendString(b, r.ID)
			b = append(b, ',')
		}
		b = append(b, `"ordinal":`...)
		b = strconv.AppendInt(b, int64(r.Ordinal), 10)
		b = append(b, '}')
	}
	if c := d.Chain; c != nil {
		b = append(b, `,"chain":{"id":`...)
		b = appendString(b, c.ID)
		b = append(b, `,"position":`...)
		b = strconv.AppendInt(b, int64(c.Position), 10)
		b = append(b, '}')
	}
	b = append(b, `,"context":{`...)
	b = appendOptional(b, false, "project_id", d.Context.ProjectID, "project_slug", d.Context.ProjectSlug)
	b = append(b, `},"event":{`...)
	b = appendOptional(b, false, "type", d.Event.Type, "webhook_id", d.Event.WebhookID)
	b = append(b, `},"worker":`...)
	b = appendString(b, d.Worker)
	return append(b, '}')
}

// appendOptional appends the non-empty ones of two omitempty string
// fields (name, value pairs) of an object.
func appendOptional(b []byte, comma bool, name1, v1, name2, v2 string) []byte {
	for _, f := range [2][2]string{{name1, v1}, {name2, v2}} {
		if f[1] == "" {
			continue
		}
		if comma {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, f[0]...)
		b = append(b, `":`...)
		b = appendString(b, f[1])
		comma = true
	}
	return b
}

// appendString appends s as a JSON string. Printable ASCII other than
// the characters json.Marshal escapes (" \ < > &) is copied as is;
// anything else is quoted by json.Marshal, so the escaping is exactly
// its own.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, err := json.Marshal(s)
			if err != nil { // cannot happen for a string
				return append(b, `""`...)
			}
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendTime appends t as time.Time.MarshalJSON does (RFC 3339 with
// nanoseconds, trailing zeros dropped).
func appendTime(b []byte, t time.Time) []byte {
	if y := t.Year(); y < 0 || y > 9999 { // MarshalJSON fails; never for a decision time
		q, err := json.Marshal(t)
		if err != nil {
			return append(b, `""`...)
		}
		return append(b, q...)
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}
