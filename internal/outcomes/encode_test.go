package outcomes_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/dispatch"
	"github.com/aweber-imbi/imbi-worker/internal/envelope"
	"github.com/aweber-imbi/imbi-worker/internal/outcomes"
	"github.com/aweber-imbi/imbi-worker/internal/worker"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// settlementOf is a settlement of an action message with CE id id and
// handler handler.
func settlementOf(id, handler string, dec worker.Decision, attempt int) *worker.Settlement {
	ce := event.New()
	ce.SetID(id)
	msg := &envelope.Message{Event: ce}
	msg.Data.Rule = wire.Rule{ID: "r-7", Handler: handler, Ordinal: 3}
	msg.Data.Context.ProjectID, msg.Data.Context.ProjectSlug = "p-1", "checkout"
	msg.Data.Event.Type = "push"
	msg.Data.Event.Metadata.WebhookID = "wh-1"
	return &worker.Settlement{Decision: dec, Attempt: attempt, Event: msg,
		Meta: &jetstream.MsgMetadata{Stream: "IMBI_ACTIONS", Sequence: jetstream.SequencePair{Stream: 42}}}
}

// TestAppendJSONEqualsMarshal: the appending encoder's output is byte for
// byte json.Marshal's (the encoder the hook used before), for outcomes of
// every status and shape and for strings that need escaping.
func TestAppendJSONEqualsMarshal(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 3, 10, 0, 0, 123456789, time.UTC)
	whole := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	ran := dispatch.Result{Ran: true, ActionDuration: 1234 * time.Millisecond}
	settlements := map[string]*worker.Settlement{
		"succeeded":                   settlementOf("d-1.p-1", "test#ok", worker.Decision{Kind: worker.KindAck, At: at, Result: ran}, 1),
		"succeeded at a whole second": settlementOf("d-1.p-1", "test#ok", worker.Decision{Kind: worker.KindAck, At: whole}, 1),
		"deduplicated":                settlementOf("d-1.p-1", "test#ok", worker.Decision{Kind: worker.KindDuplicate, At: at}, 2),
		"retrying": settlementOf("d-2", "test#fail", worker.Decision{Kind: worker.KindRetry, Reason: wire.ReasonActionFailed,
			ErrorText: "boom <b>&\"quoted\"\n\ttab é ☃ \u2028", Delay: 1500 * time.Millisecond, At: at, Result: ran}, 3),
		"paused": settlementOf("d-3", "test#rate_limited", worker.Decision{Kind: worker.KindDefer, Reason: wire.ReasonRateLimited,
			Delay: time.Second, At: at}, 7),
		"dead lettered": func() *worker.Settlement {
			s := settlementOf("d-4", "test#fail", worker.Decision{Kind: worker.KindDeadLetter, Reason: wire.ReasonMaxAttempts,
				ErrorText: "gave up", At: at, Result: ran}, 2)
			s.LetterAck = &jetstream.PubAck{Stream: "IMBI_DLQ", Sequence: 99}
			return s
		}(),
		"dead lettered, letter not stored": settlementOf("d-4", "test#fail", worker.Decision{Kind: worker.KindDeadLetter,
			Reason: wire.ReasonInvalidConfig, At: at}, 1),
		"requeue": settlementOf("d-5", "test#slow", worker.Decision{Kind: worker.KindRequeue, At: at, Result: ran}, 1),
		"invalid handler": settlementOf("d-6", "no handler <here> & \x01\xff", worker.Decision{Kind: worker.KindDeadLetter,
			Reason: wire.ReasonInvalidHandler, At: at}, 1),
		"not a cloudevent": {Decision: worker.Decision{Kind: worker.KindDeadLetter, Reason: wire.ReasonInvalidEvent, At: at}, Attempt: 1,
			Meta: &jetstream.MsgMetadata{Stream: "IMBI_ACTIONS", Sequence: jetstream.SequencePair{Stream: 7}}},
		"chain step": func() *worker.Settlement {
			s := settlementOf("d-7.p-1.1", "chaos#record", worker.Decision{Kind: worker.KindAck, At: at}, 1)
			s.Event.Chain = &wire.Chain{ID: "d-7.p-1", Position: 1}
			return s
		}(),
		"replay": func() *worker.Settlement {
			s := settlementOf("d-8", "test#ok", worker.Decision{Kind: worker.KindAck, At: at}, 1)
			s.Msg = headerMsg{h: nats.Header{wire.HeaderMsgID: []string{"d-8.replay.2"}}}
			return s
		}(),
		"long id": settlementOf(strings.Repeat("x", 1200), "test#ok", worker.Decision{Kind: worker.KindAck, At: at}, 1),
		"empty context": func() *worker.Settlement {
			s := settlementOf("d-9", "test#ok", worker.Decision{Kind: worker.KindAck, At: at}, 1)
			s.Event.Data.Context.ProjectID, s.Event.Data.Event.Type = "", ""
			s.Event.Data.Rule.ID = ""
			return s
		}(),
	}
	events := map[string]outcomes.Event{}
	for name, s := range settlements {
		ev, _, ok := outcomes.Build(s, "imbi.outcomes", "w-1")
		require.True(t, ok, name)
		events[name] = ev
	}
	odd := []string{"", "plain", `"`, `\`, "<>&", "\x00\x1f\x7f", "\b\f\n\r\t", "é☃😀", "\u2028\u2029", "\xff\xfe", "a\xc3", "</script>", "a<b", "a>b", "a&b", "\x7f", "\x1f", "\u00e9"}
	for i, s := range odd {
		ev := events["retrying"]
		ev.Data.Error, ev.Data.Handler, ev.Source = s, s, s
		ev.Data.Context = outcomes.Context{ProjectSlug: s}
		ev.Data.Event = outcomes.EventInfo{WebhookID: s}
		ev.Data.Rule = &outcomes.Rule{ID: s, Ordinal: -i}
		ev.Data.Chain = &outcomes.Chain{ID: s, Position: i}
		ev.Data.DeadLetter = &outcomes.DeadLetter{Stream: s, Seq: 1<<64 - 1}
		zone := time.FixedZone("", -5*3600)
		ev.Time = ev.Time.In(zone)
		events["odd string "+s] = ev
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		b := make([]byte, rng.IntN(40))
		for j := range b {
			b[j] = byte(rng.IntN(256))
		}
		ev := events["paused"]
		ev.Data.Error, ev.Subject = string(b), strings.ToValidUTF8(string(b), "?")
		ev.Data.DurationMS = rng.Int64() - rng.Int64()
		events["random "+strings.Repeat("x", i)] = ev
	}
	for name, ev := range events {
		want, err := json.Marshal(ev)
		require.NoError(t, err, name)
		got := ev.AppendJSON([]byte("prefix"))
		require.Equal(t, "prefix"+string(want), string(got), name)
		require.True(t, utf8.Valid(got), name)
	}
}

// headerMsg is a jetstream.Msg with headers only (Build reads nothing
// else of it).
type headerMsg struct {
	jetstream.Msg
	h nats.Header
}

func (m headerMsg) Headers() nats.Header { return m.h }

func BenchmarkEncode(b *testing.B) {
	s := settlementOf("d-1.p-1", "test#ok", worker.Decision{Kind: worker.KindAck, At: time.Now()}, 1)
	ev, _, _ := outcomes.Build(s, "imbi.outcomes", "w-1")
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = ev.AppendJSON(make([]byte, 0, 1024))
		}
	})
	b.Run("marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(ev)
		}
	})
}

// BenchmarkBuild: an outcome built from a settlement whose handler the
// worker parsed (Settlement.Handler set, as in a worker) and from one
// whose handler Build parses itself.
func BenchmarkBuild(b *testing.B) {
	for _, known := range []bool{true, false} {
		b.Run(fmt.Sprintf("handler-parsed-by-worker=%v", known), func(b *testing.B) {
			s := settlementOf("d-1.p-1", "test#ok", worker.Decision{Kind: worker.KindAck, At: time.Now()}, 1)
			if known {
				s.Handler = "test#ok"
			}
			b.ReportAllocs()
			for b.Loop() {
				_, _, _ = outcomes.Build(s, "imbi.outcomes", "w-1")
			}
		})
	}
}
