package dlq_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/dlq"
	"github.com/aweber-imbi/imbi-worker/internal/streams"
	"github.com/aweber-imbi/imbi-worker/internal/streams/streamstest"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// env is a real embedded nats-server with the streams of wire-contract §2
// provisioned the way the worker does it.
type env struct {
	nc    *nats.Conn
	js    jetstream.JetStream
	work  jetstream.Stream
	dead  jetstream.Stream
	store *dlq.Store
}

func setup(t *testing.T) *env {
	t.Helper()
	e := streamstest.Start(t, streams.DefaultConfig())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	store, err := dlq.Open(ctx, e.JS, dlq.Config{})
	require.NoError(t, err)
	return &env{nc: e.NC, js: e.JS, work: e.Provisioned.Stream, dead: e.Provisioned.DLQ, store: store}
}

// letterSpec is what the test dead-letters; expectations are computed
// from specs, independently of the package's filter code.
type letterSpec struct {
	handler    string // "<plugin>#<action>" or "_invalid"
	reason     wire.Reason
	lastReason wire.Reason
	deadAt     time.Time
	ceID       string
	extra      map[string]string // more original headers
	body       []byte
}

// deadLetter publishes what the worker would: the original message (a
// structured CloudEvent) with the Imbi-Dlq-* headers added.
func deadLetterMsg(s letterSpec) *nats.Msg {
	subjTok := wire.InvalidToken
	workSubject := wire.DefaultSubjectPrefix + ".bad.subject"
	if s.handler != wire.InvalidToken {
		plugin, action := splitHandler(s.handler)
		subjTok = plugin + "." + action
		workSubject = wire.DefaultSubjectPrefix + "." + subjTok
	}
	msg := nats.NewMsg(wire.DefaultDLQPrefix + "." + subjTok)
	body := s.body
	if body == nil {
		body, _ = json.Marshal(map[string]any{
			"specversion": "1.0", "id": s.ceID, "type": wire.EventType,
			"source": "/imbi-gateway/webhooks/wh-1", "subject": s.handler,
			"datacontenttype": "application/json",
			"data": map[string]any{"rule": map[string]any{"handler": s.handler},
				"event": map[string]any{"metadata": map[string]any{"headers": map[string]string{"authorization": "Bearer leaked-in-body"}}}},
		})
	}
	msg.Data = body
	msg.Header.Set(wire.HeaderContentType, wire.ContentTypeCE)
	if s.ceID != "" {
		msg.Header.Set(wire.HeaderMsgID, s.ceID)
	}
	msg.Header.Set(wire.HeaderTraceparent, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	for k, v := range s.extra {
		msg.Header.Set(k, v)
	}
	msg.Header.Set(wire.DLQReason, string(s.reason))
	if s.lastReason != "" {
		msg.Header.Set(wire.DLQLastReason, string(s.lastReason))
	}
	msg.Header.Set(wire.DLQError, "boom (redacted)")
	msg.Header.Set(wire.DLQAttempts, "5")
	msg.Header.Set(wire.DLQOriginalSubject, workSubject)
	msg.Header.Set(wire.DLQOriginalSeq, "77")
	msg.Header.Set(wire.DLQFirstReceived, s.deadAt.Add(-time.Minute).Format(time.RFC3339Nano))
	msg.Header.Set(wire.DLQDeadAt, s.deadAt.Format(time.RFC3339Nano))
	msg.Header.Set(wire.DLQWorker, "test-worker")
	return msg
}

func splitHandler(h string) (string, string) {
	for i := range h {
		if h[i] == '#' {
			return h[:i], h[i+1:]
		}
	}
	return h, ""
}

func (e *env) publishLetters(t *testing.T, specs []letterSpec) []uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	futures := make([]jetstream.PubAckFuture, len(specs))
	for i, s := range specs {
		f, err := e.js.PublishMsgAsync(deadLetterMsg(s))
		require.NoError(t, err)
		futures[i] = f
	}
	seqs := make([]uint64, len(specs))
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			require.False(t, ack.Duplicate)
			seqs[i] = ack.Sequence
		case err := <-f.Err():
			require.NoError(t, err)
		case <-ctx.Done():
			t.Fatal("publish acks timed out")
		}
	}
	return seqs
}

var (
	testHandlers = []string{"github#create_issue", "github#close_issue", "http#request", "slack#post", wire.InvalidToken}
	testReasons  = []wire.Reason{wire.ReasonInvalidConfig, wire.ReasonUnknownHandler, wire.ReasonMaxAttempts, wire.ReasonPanic, wire.ReasonCredentialsMissing, wire.ReasonInvalidEvent, wire.ReasonRateLimited}
	baseTime     = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
)

// thousandSpecs: 1000 letters cycling handlers (5) and reasons (7), one
// minute apart; max_attempts letters carry timeout as their last reason.
func thousandSpecs() []letterSpec {
	specs := make([]letterSpec, 1000)
	for i := range specs {
		s := letterSpec{
			handler: testHandlers[i%len(testHandlers)],
			reason:  testReasons[i%len(testReasons)],
			deadAt:  baseTime.Add(time.Duration(i) * time.Minute),
			ceID:    "d-" + strconv.Itoa(i) + ".0",
		}
		if s.reason == wire.ReasonMaxAttempts {
			s.lastReason = wire.ReasonTimeout
		}
		specs[i] = s
	}
	return specs
}

func ids(letters []dlq.Letter) []string {
	out := make([]string, len(letters))
	for i, l := range letters {
		out[i] = l.EventID
	}
	return out
}

func specIDs(specs []letterSpec, keep func(i int, s letterSpec) bool) []string {
	var out []string
	for i, s := range specs {
		if keep(i, s) {
			out = append(out, s.ceID)
		}
	}
	return out
}
