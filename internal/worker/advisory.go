package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/aweber-imbi/imbi-worker/internal/deadletter"
	"github.com/aweber-imbi/imbi-worker/internal/dispatch"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// maxDeliveriesAdvisory is the server's advisory subject for a message
// that reached the consumer's MaxDeliver (wire-contract §4).
func maxDeliveriesAdvisory(stream, consumer string) string {
	return "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + stream + "." + consumer
}

// advisoryQueue makes one replica, not all, handle each advisory.
const advisoryQueue = "imbi-worker-max-deliveries"

type maxDeliveriesEvent struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

func (w *Worker) subscribeAdvisories() (*advisories, error) {
	subj := maxDeliveriesAdvisory(w.cfg.Streams.Stream, w.cfg.Streams.Consumer)
	a := &advisories{handler: make(chan struct{}, 1)}
	sub, err := w.nc.QueueSubscribe(subj, advisoryQueue, func(m *nats.Msg) {
		if !a.enter() {
			return // stopping
		}
		defer a.leave()
		defer func() {
			if p := recover(); p != nil { // the worker goes on (security issue 12 §5)
				w.log.Error("panic while handling a max-deliveries advisory", "panic", dispatch.RedactText(fmt.Sprint(p), nil))
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), advisoryTimeout)
		defer cancel()
		if err := w.handleMaxDeliveries(ctx, m.Data); err != nil {
			w.log.Error("max-deliveries advisory not handled", "error", err)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", subj, err)
	}
	a.sub = sub
	return a, nil
}

// advisoryTimeout bounds the handling of one advisory.
const advisoryTimeout = 30 * time.Second

// handleMaxDeliveries is the last net for a message the server gave up
// on: it is still in the work stream but will never be delivered again.
// Dead-letter it by stream sequence, then delete it from the stream.
func (w *Worker) handleMaxDeliveries(ctx context.Context, payload []byte) error {
	var ev maxDeliveriesEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return fmt.Errorf("advisory payload: %w", err)
	}
	if ev.StreamSeq == 0 {
		return errors.New("advisory without stream_seq")
	}
	if why, err := w.checkMaxDeliveries(ctx, ev); err != nil {
		return err
	} else if why != "" {
		// Anyone allowed to publish on the advisory subject could forge
		// one and have a pending message dead-lettered and deleted
		// (security issue 12 §6): act only on what the consumer confirms.
		w.log.Warn("max-deliveries advisory ignored: not confirmed by the consumer", "stream_seq", ev.StreamSeq,
			"deliveries", ev.Deliveries, "why", why)
		return nil
	}
	raw, err := w.stream.GetMsg(ctx, ev.StreamSeq)
	if err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil // settled meanwhile
		}
		return fmt.Errorf("get seq %d: %w", ev.StreamSeq, err)
	}
	subject := deadletter.WorkSubject(w.cfg.Streams.DLQPrefix, w.cfg.Streams.SubjectPrefix, raw.Subject)
	sm := &storedMsg{raw: raw, stream: w.stream, ctx: ctx}
	// Decoded so the settle hooks see the event as on the settle path (a
	// chain step's continuation, the outcome's handler and rule); the body
	// is redacted from its bytes either way (internal/redact). Bytes that
	// are not a CloudEvent leave ce nil.
	ce, _ := w.dec.Decode(raw.Header, raw.Data)
	d := &delivery{msg: sm, handler: unknownHandler, ev: ce, attempt: int(ev.Deliveries), deliveries: int(ev.Deliveries), letterSubject: subject, base: w.log,
		meta: &jetstream.MsgMetadata{Sequence: jetstream.SequencePair{Stream: raw.Sequence}, NumDelivered: ev.Deliveries,
			Timestamp: raw.Time, Stream: w.cfg.Streams.Stream, Consumer: w.cfg.Streams.Consumer}}
	if ce != nil {
		d.ceID = ce.ID()
	}
	_, d.span = w.tracer.Start(ctx, "max_deliveries advisory")
	w.settler.Settle(ctx, d, Decision{Kind: KindDeadLetter, Reason: wire.ReasonMaxAttempts, LastReason: wire.ReasonUnsettled,
		ErrorText: fmt.Sprintf("the server stopped delivering after %d deliveries (MaxDeliver advisory)", ev.Deliveries)})
	if d.st.LetterAck == nil {
		return fmt.Errorf("dead-letter seq %d: not stored", ev.StreamSeq)
	}
	if sm.ackErr != nil {
		return fmt.Errorf("delete seq %d after dead-lettering: %w", ev.StreamSeq, sm.ackErr)
	}
	w.log.Error("dead-lettered from max-deliveries advisory", "stream_seq", ev.StreamSeq,
		"deliveries", ev.Deliveries, "dlq_subject", subject)
	return nil
}

// checkMaxDeliveries confirms an advisory with the consumer's own state
// before anything is touched; it returns why not when the advisory cannot
// be true. The server removes a message that reached MaxDeliver from the
// consumer's pending set and publishes the advisory with deliveries =
// MaxDeliver; so the advisory must name this stream and consumer, claim
// at least MaxDeliver deliveries, and point at a sequence the consumer
// has delivered already (a message still waiting for its first delivery,
// above Delivered.Stream, cannot have reached it).
func (w *Worker) checkMaxDeliveries(ctx context.Context, ev maxDeliveriesEvent) (string, error) {
	if ev.Stream != w.cfg.Streams.Stream || ev.Consumer != w.cfg.Streams.Consumer {
		return fmt.Sprintf("names stream %q consumer %q", ev.Stream, ev.Consumer), nil
	}
	info, err := w.consumer.Info(ctx)
	if err != nil {
		return "", fmt.Errorf("consumer info to confirm seq %d: %w", ev.StreamSeq, err)
	}
	switch maxDeliver := info.Config.MaxDeliver; {
	case maxDeliver <= 0:
		return "the consumer has no MaxDeliver", nil
	case ev.Deliveries < uint64(maxDeliver):
		return fmt.Sprintf("claims %d deliveries, MaxDeliver is %d", ev.Deliveries, maxDeliver), nil
	case ev.StreamSeq > info.Delivered.Stream:
		return fmt.Sprintf("seq %d was never delivered (consumer delivered up to %d)", ev.StreamSeq, info.Delivered.Stream), nil
	}
	return "", nil
}

// storedMsg is a work-stream message the server gave up on, as the
// settler sees it: the settle's ack deletes it from the stream (nothing
// else will), Nak and InProgress do nothing (there is no delivery to
// give back). Other jetstream.Msg methods are not used by the settler.
type storedMsg struct {
	jetstream.Msg // nil: anything not below panics (a panic is recovered as one)
	raw           *jetstream.RawStreamMsg
	stream        jetstream.Stream
	ctx           context.Context
	ackErr        error
}

func (m *storedMsg) Subject() string      { return m.raw.Subject }
func (m *storedMsg) Headers() nats.Header { return m.raw.Header }
func (m *storedMsg) Data() []byte         { return m.raw.Data }
func (m *storedMsg) Ack() error {
	if err := m.stream.DeleteMsg(m.ctx, m.raw.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		m.ackErr = err
		return err
	}
	return nil
}
func (m *storedMsg) Nak() error                       { return nil }
func (m *storedMsg) NakWithDelay(time.Duration) error { return nil }
func (m *storedMsg) InProgress() error                { return nil }
func (m *storedMsg) Term() error                      { return nil }
func (m *storedMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return nil, errors.New("stored message")
}
