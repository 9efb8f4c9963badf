package worker

import (
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/aweber-imbi/imbi-worker/internal/dispatch"
	"github.com/aweber-imbi/imbi-worker/internal/envelope"
	"github.com/aweber-imbi/imbi-worker/plugins"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// letter builds a delivery's dead letter for dec (wire-contract §5).
func (s *settler) letter(d *delivery, dec Decision) *nats.Msg {
	return buildDeadLetter(deadLetter{
		subject: s.dlqSubject(d, dec.Reason), header: d.msg.Headers(), body: d.msg.Data(), ev: d.ev,
		reason: dec.Reason, lastReason: dec.LastReason, errText: dec.ErrorText, attempts: uint64(d.attempt),
		origSubject: d.msg.Subject(), origSeq: d.meta.Sequence.Stream,
		firstReceived: d.meta.Timestamp, deadAt: dec.At, workerID: s.cfg.WorkerID,
	})
}

// deadLetter is what a dead letter is built from: the original message
// and why it died. Both the settle path and the max-deliveries advisory
// build theirs with buildDeadLetter, so they cannot drift apart.
type deadLetter struct {
	subject            string
	header             nats.Header
	body               []byte
	ev                 *envelope.Message // nil: the body is not a decoded CloudEvent
	reason, lastReason wire.Reason
	errText            string
	attempts           uint64
	origSubject        string
	origSeq            uint64
	firstReceived      time.Time
	deadAt             time.Time
	workerID           string
}

// buildDeadLetter: the original body byte for byte unless a sensitive
// webhook header in it had to be redacted (decision 0006), the original
// headers (sensitive values redacted, earlier Imbi-Dlq-* and
// Nats-Expected-* dropped) plus ours.
func buildDeadLetter(l deadLetter) *nats.Msg {
	out := nats.NewMsg(l.subject)
	for k, vals := range l.header {
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
		if wire.IsSensitiveHeader(k) {
			out.Header[k] = []string{wire.Redacted}
			continue
		}
		out.Header[k] = append([]string(nil), vals...)
	}
	var redacted []string
	out.Data, redacted = redactDeadLetterBody(l.ev, l.body) // deadletter_redact.go
	if len(redacted) > 0 {
		out.Header.Set(wire.DLQRedacted, strings.Join(redacted, ","))
	}
	out.Header.Set(wire.DLQReason, string(l.reason))
	if l.lastReason != "" {
		out.Header.Set(wire.DLQLastReason, string(l.lastReason))
	}
	out.Header.Set(wire.DLQError, headerSafe(dispatch.Truncate(l.errText, wire.DLQErrorMaxBytes)))
	out.Header.Set(wire.DLQAttempts, strconv.FormatUint(l.attempts, 10))
	out.Header.Set(wire.DLQOriginalSubject, l.origSubject)
	out.Header.Set(wire.DLQOriginalSeq, strconv.FormatUint(l.origSeq, 10))
	out.Header.Set(wire.DLQFirstReceived, l.firstReceived.UTC().Format(time.RFC3339Nano))
	out.Header.Set(wire.DLQDeadAt, l.deadAt.UTC().Format(time.RFC3339Nano))
	out.Header.Set(wire.DLQWorker, l.workerID)
	return out
}

// dlqSubject: <dlq prefix>.<plugin>.<action> from the handler; the
// original subject's tail when the handler does not parse; _invalid for
// bytes that are not a CloudEvent.
func (s *settler) dlqSubject(d *delivery, reason wire.Reason) string {
	if d.letterSubject != "" {
		return d.letterSubject
	}
	prefix := s.cfg.Streams.DLQPrefix
	invalid := prefix + "." + wire.InvalidToken
	if d.ev == nil || reason == wire.ReasonInvalidEvent {
		return invalid
	}
	if h, err := plugins.ParseHandler(d.rawHndlr); err == nil {
		return wire.Subject(prefix, h)
	}
	if tail, ok := strings.CutPrefix(d.msg.Subject(), s.cfg.Streams.SubjectPrefix+"."); ok && tail != "" {
		return prefix + "." + tail
	}
	return invalid
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
