package worker

import (
	"strconv"

	"github.com/nats-io/nats.go"

	"github.com/aweber-imbi/imbi-worker/internal/deadletter"
	"github.com/aweber-imbi/imbi-worker/internal/redact"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// letter builds a delivery's dead letter for dec (wire-contract §5,
// internal/deadletter): the body redacted as decision 0006 says.
func (s *settler) letter(d *delivery, dec Decision) *nats.Msg {
	subject := d.letterSubject
	if subject == "" {
		subject = deadletter.Subject(s.cfg.Streams.DLQPrefix, s.cfg.Streams.SubjectPrefix, d.ev != nil,
			dec.Reason, d.rawHndlr, d.msg.Subject())
	}
	var body []byte
	var redacted []string
	if d.omitted == 0 {
		body, redacted = redact.Body(d.msg.Data()) // fails closed: a token scan when not JSON
	}
	// else: above --max-event-bytes, so neither decoded nor redacted nor
	// kept: the letter gives its size instead (wire.DLQBodyOmitted).
	out := deadletter.Build(deadletter.Letter{
		Subject: subject, Header: d.msg.Headers(), Body: body, Redacted: redacted,
		Reason: dec.Reason, LastReason: dec.LastReason, Error: dec.ErrorText, Attempts: uint64(d.attempt),
		OriginalSubject: d.msg.Subject(), OriginalSeq: d.meta.Sequence.Stream,
		FirstReceived: d.meta.Timestamp, DeadAt: dec.At, Worker: s.cfg.WorkerID,
	})
	if d.omitted > 0 {
		out.Header.Set(wire.DLQBodyOmitted, strconv.Itoa(d.omitted))
	}
	return out
}
