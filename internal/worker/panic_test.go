package worker

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/wire"
)

// panicHook panics in BeforeSettle for one CloudEvent id.
type panicHook struct{ id string }

func (h panicHook) BeforeSettle(_ context.Context, s *Settlement) error {
	if s.Event != nil && s.Event.ID() == h.id {
		panic("settle hook exploded")
	}
	return nil
}

// TestPanicOnTheMessagePathDeadLetters: a panic while decoding, in a
// config's Validate, or in a settle hook dead-letters the message with
// reason panic, and the same worker (one intake goroutine) goes on to the
// next message (security issue 12 §5).
func TestPanicOnTheMessagePathDeadLetters(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		handler string
		adjust  func(*Config)
	}{
		{name: "decode", handler: "test#ok", adjust: func(c *Config) {
			c.hooks.beforeDecode = func(body []byte) {
				if bytes.Contains(body, []byte("boom-decode")) {
					panic("decoder exploded")
				}
			}
		}},
		{name: "config Validate", handler: "test#validate_panic"},
		{name: "settle hook", handler: "test#ok", adjust: func(c *Config) {
			c.Hooks.BeforeSettle = []BeforeSettleHook{panicHook{id: "boom-settle hook"}}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			off := false // one intake goroutine: a dead one would stop everything
			e := newEnv(t, envOpts{idempotency: &off})
			cfg := e.config()
			cfg.Concurrency = 1
			if tc.adjust != nil {
				tc.adjust(&cfg)
			}
			_, _ = e.start(cfg)
			id := "boom-" + tc.name
			seq := e.publish(id, tc.handler, nil)
			dl := e.waitDLQ(id, 10*time.Second)
			require.Equal(t, string(wire.ReasonPanic), dl.Header.Get(wire.DLQReason))
			require.Contains(t, dl.Header.Get(wire.DLQError), "panicked")
			require.Eventually(t, func() bool { return e.gone(seq) }, 5*time.Second, 10*time.Millisecond)
			next := e.publish("after-"+tc.name, "test#ok", nil)
			require.Eventually(t, func() bool { return e.gone(next) }, 10*time.Second, 10*time.Millisecond)
			require.Equal(t, 1, e.rec.Calls("after-"+tc.name))
			require.Len(t, e.dlq.get(id), 1)
		})
	}
}
