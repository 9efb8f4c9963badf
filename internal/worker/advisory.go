package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

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

func (w *Worker) subscribeAdvisories() (*nats.Subscription, error) {
	subj := maxDeliveriesAdvisory(w.cfg.Streams.Stream, w.cfg.Streams.Consumer)
	sub, err := w.nc.QueueSubscribe(subj, advisoryQueue, func(m *nats.Msg) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := w.handleMaxDeliveries(ctx, m.Data); err != nil {
			w.log.Error("max-deliveries advisory not handled", "error", err)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", subj, err)
	}
	return sub, nil
}

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
	raw, err := w.stream.GetMsg(ctx, ev.StreamSeq)
	if err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil // settled meanwhile
		}
		return fmt.Errorf("get seq %d: %w", ev.StreamSeq, err)
	}
	prefix := w.cfg.Streams.DLQPrefix
	subject := prefix + "." + wire.InvalidToken
	if tail, ok := strings.CutPrefix(raw.Subject, w.cfg.Streams.SubjectPrefix+"."); ok && tail != "" {
		subject = prefix + "." + tail
	}
	// Decoded only so a leaked secret in the body is redacted as on the
	// settle path; bytes that are not a CloudEvent stay as they are.
	ce, _ := w.dec.Decode(raw.Header, raw.Data)
	out := w.buildDeadLetter(deadLetter{
		subject: subject, header: raw.Header, body: raw.Data, ev: ce,
		reason: wire.ReasonMaxAttempts, lastReason: wire.ReasonUnsettled,
		errText:  fmt.Sprintf("the server stopped delivering after %d deliveries (MaxDeliver advisory)", ev.Deliveries),
		attempts: ev.Deliveries, origSubject: raw.Subject, origSeq: raw.Sequence,
		firstReceived: raw.Time, deadAt: time.Now(),
	})
	if _, err := w.js.PublishMsg(ctx, out); err != nil {
		return fmt.Errorf("dead-letter seq %d: %w", ev.StreamSeq, err)
	}
	if err := w.stream.DeleteMsg(ctx, ev.StreamSeq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("delete seq %d after dead-lettering: %w", ev.StreamSeq, err)
	}
	w.metrics.deadLetter(ctx, unknownHandler, wire.ReasonMaxAttempts)
	w.log.Error("dead-lettered from max-deliveries advisory", "stream_seq", ev.StreamSeq,
		"deliveries", ev.Deliveries, "dlq_subject", subject)
	return nil
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
