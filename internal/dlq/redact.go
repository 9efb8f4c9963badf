package dlq

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/aweber-imbi/imbi-worker/wire"
)

// maxShownBody bounds a body that is not JSON when it is shown.
const maxShownBody = 4 << 10

// View is a letter as `dlq show` prints it: safe to put on a terminal, in
// a ticket or a log. Sensitive header values are "[redacted]" both in the
// NATS headers and in the body's header maps (event.metadata.headers, or
// any JSON object key named like a sensitive header).
type View struct {
	Letter
	Headers map[string][]string `json:"headers"`
	// Body is the JSON body (redacted) when it is JSON.
	Body json.RawMessage `json:"body,omitempty"`
	// BodyText is a body that is not JSON: printable text, truncated to
	// 4 KiB, or a note when it is binary.
	BodyText string `json:"body_text,omitempty"`
}

// Redacted returns the printable view of l.
func Redacted(l Letter) View {
	v := View{Letter: l, Headers: map[string][]string{}}
	for k, vs := range l.Header {
		out := slices.Clone(vs)
		if wire.IsSensitiveHeader(k) || isSensitiveCEHeader(k) {
			for i := range out {
				out[i] = wire.Redacted
			}
		}
		v.Headers[k] = out
	}
	v.Body, v.BodyText = redactBody(l.Data)
	return v
}

// isSensitiveCEHeader: a binary-mode extension named like a sensitive
// header (ce-authorization) is redacted too.
func isSensitiveCEHeader(k string) bool {
	name, ok := strings.CutPrefix(strings.ToLower(k), wire.CEHeaderPrefix)
	return ok && wire.IsSensitiveHeader(name)
}

// redactBody redacts a JSON body; anything else is shown only as bounded
// text. A structured CloudEvent whose data came as data_base64 is decoded,
// redacted and shown as "data" so nothing hides in the encoding.
func redactBody(data []byte) (json.RawMessage, string) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, ""
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err == nil && !dec.More() {
		doc = redactValue(doc)
		if m, ok := doc.(map[string]any); ok {
			if b64, ok := m["data_base64"].(string); ok {
				if raw, err := base64.StdEncoding.DecodeString(b64); err == nil {
					inner, text := redactBody(raw)
					delete(m, "data_base64")
					if inner != nil {
						m["data"] = inner
					} else {
						m["data"] = text
					}
				}
			}
		}
		out, err := json.MarshalIndent(doc, "", "  ")
		if err == nil {
			return out, ""
		}
	}
	if !utf8.Valid(data) || bytes.ContainsFunc(data, func(r rune) bool { return r < 0x20 && r != '\n' && r != '\r' && r != '\t' }) {
		return nil, "(binary body, " + strconv.Itoa(len(data)) + " bytes, not shown)"
	}
	if len(data) > maxShownBody {
		cut := maxShownBody
		for cut > 0 && !utf8.RuneStart(data[cut]) {
			cut--
		}
		return nil, string(data[:cut]) + "… (" + strconv.Itoa(len(data)) + " bytes)"
	}
	return nil, string(data)
}

// redactValue replaces the value of every object key named like a
// sensitive header, at any depth.
func redactValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if wire.IsSensitiveHeader(k) {
				if val != nil {
					x[k] = wire.Redacted
				}
				continue
			}
			x[k] = redactValue(val)
		}
		return x
	case []any:
		for i := range x {
			x[i] = redactValue(x[i])
		}
		return x
	default:
		return v
	}
}
