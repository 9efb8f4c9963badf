// Package deadletter is the one definition of a dead letter (wire-contract
// §5): Build makes the message the worker publishes to the dead-letter
// stream, Parse reads its Imbi-Dlq-* headers back (internal/dlq), Subject
// picks its subject (decision 0005 §3). The worker and `imbi-worker dlq`
// both use it, so the header set cannot drift between writer and reader.
//
// Redaction is not done here: the caller passes the body it redacted and
// the JSON paths it replaced (decision 0006), and Build redacts sensitive
// NATS header values by name (redact.Header, ce-<name> included).
package deadletter

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/aweber-imbi/imbi-worker/internal/redact"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// Letter is what a dead letter is built from: the original message and
// why it died.
type Letter struct {
	// Subject is the dead-letter subject (Subject).
	Subject string
	// Header is the original message's headers; Body the body to store
	// (the original, or its redacted copy) and Redacted the JSON paths the
	// caller replaced by "[redacted]" in it (Imbi-Dlq-Redacted).
	Header   nats.Header
	Body     []byte
	Redacted []string
	// Reason is the §4 reason code; LastReason the last failure of a
	// max_attempts letter.
	Reason, LastReason wire.Reason
	// Error is the failure text, secrets already redacted; Build cuts it
	// to wire.DLQErrorMaxBytes and keeps it on one line.
	Error           string
	Attempts        uint64
	OriginalSubject string
	OriginalSeq     uint64
	FirstReceived   time.Time
	DeadAt          time.Time
	// Worker is the worker instance id.
	Worker string
}

// Build returns the letter's message: the body as given, the original
// headers with sensitive values redacted and earlier Imbi-Dlq-* and any
// Nats-Expected-* dropped, plus the Imbi-Dlq-* headers.
func Build(l Letter) *nats.Msg {
	out := nats.NewMsg(l.Subject)
	for k, vals := range l.Header {
		if wire.IsDLQHeader(k) {
			continue // from an earlier dead-lettering of a replayed message
		}
		if hasPrefixFold(k, "Nats-Expected-") {
			// Publish preconditions of the original publish (nats-py and
			// nats.go set Nats-Expected-Stream: IMBI_ACTIONS); JetStream
			// stores them, and copied here they make the DLQ publish fail
			// with "expected stream does not match" forever.
			continue
		}
		if redact.Header(k) { // also binary-mode ce-<name>
			out.Header[k] = []string{redact.Replacement}
			continue
		}
		out.Header[k] = append([]string(nil), vals...)
	}
	out.Data = l.Body
	if len(l.Redacted) > 0 {
		out.Header.Set(wire.DLQRedacted, strings.Join(l.Redacted, ","))
	}
	out.Header.Set(wire.DLQReason, string(l.Reason))
	if l.LastReason != "" {
		out.Header.Set(wire.DLQLastReason, string(l.LastReason))
	}
	out.Header.Set(wire.DLQError, headerSafe(truncate(l.Error, wire.DLQErrorMaxBytes)))
	out.Header.Set(wire.DLQAttempts, strconv.FormatUint(l.Attempts, 10))
	out.Header.Set(wire.DLQOriginalSubject, l.OriginalSubject)
	out.Header.Set(wire.DLQOriginalSeq, strconv.FormatUint(l.OriginalSeq, 10))
	out.Header.Set(wire.DLQFirstReceived, l.FirstReceived.UTC().Format(time.RFC3339Nano))
	out.Header.Set(wire.DLQDeadAt, l.DeadAt.UTC().Format(time.RFC3339Nano))
	out.Header.Set(wire.DLQWorker, l.Worker)
	return out
}

// Headers is what a stored letter's Imbi-Dlq-* headers say (Parse).
type Headers struct {
	Reason, LastReason, Error string
	Attempts                  int
	OriginalSubject           string
	OriginalSeq               uint64
	FirstReceived, DeadAt     time.Time
	Worker                    string
	// Redacted: the body paths the worker replaced (decision 0006).
	Redacted []string
}

// Parse reads a letter's headers (names case-insensitively: a letter may
// have passed through other tools). It never fails: a missing or
// malformed header leaves its field empty.
func Parse(h nats.Header) Headers {
	out := Headers{
		Reason:          Get(h, wire.DLQReason),
		LastReason:      Get(h, wire.DLQLastReason),
		Error:           Get(h, wire.DLQError),
		OriginalSubject: Get(h, wire.DLQOriginalSubject),
		Worker:          Get(h, wire.DLQWorker),
	}
	out.Attempts, _ = strconv.Atoi(Get(h, wire.DLQAttempts))
	out.OriginalSeq, _ = strconv.ParseUint(Get(h, wire.DLQOriginalSeq), 10, 64)
	out.FirstReceived = parseTime(Get(h, wire.DLQFirstReceived))
	out.DeadAt = parseTime(Get(h, wire.DLQDeadAt))
	if r := Get(h, wire.DLQRedacted); r != "" {
		out.Redacted = strings.Split(r, ",")
	}
	return out
}

// Get looks a header up case-insensitively.
func Get(h nats.Header, name string) string {
	if v := h.Get(name); v != "" {
		return v
	}
	for k, vs := range h {
		if strings.EqualFold(k, name) && len(vs) > 0 {
			return vs[0]
		}
	}
	return ""
}

// Subject is a letter's subject (decision 0005 §3) under prefix:
// <prefix>._invalid for invalid_event and bodies that are not a
// CloudEvent (decoded false); <prefix>.<plugin>.<action> from handler;
// when that does not parse, the tail of workSubject under workPrefix;
// else _invalid.
func Subject(prefix, workPrefix string, decoded bool, reason wire.Reason, handler, workSubject string) string {
	if !decoded || reason == wire.ReasonInvalidEvent {
		return prefix + "." + wire.InvalidToken
	}
	if h, err := wire.ParseHandler(handler); err == nil {
		return wire.Subject(prefix, h)
	}
	return WorkSubject(prefix, workPrefix, workSubject)
}

// WorkSubject is the letter subject of a message known only by its work
// subject (the max-deliveries advisory): the subject's tail under
// workPrefix, else _invalid.
func WorkSubject(prefix, workPrefix, workSubject string) string {
	if tail, ok := strings.CutPrefix(workSubject, workPrefix+"."); ok && tail != "" {
		return prefix + "." + tail
	}
	return prefix + "." + wire.InvalidToken
}

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

// headerSafe keeps a header value on one line.
func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// truncate cuts s to at most n bytes on a UTF-8 boundary, with an
// ellipsis (the same cut as dispatch.Truncate, which error texts already
// passed; kept here so building a letter needs no dispatch).
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ellipsis = "…"
	cut := n - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}
