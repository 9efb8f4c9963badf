package worker

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/wire"
)

// paddedEvent is event() with a payload padded to about size bytes.
func paddedEvent(t *testing.T, id, handler string, config any, size int) []byte {
	t.Helper()
	var ev map[string]any
	require.NoError(t, json.Unmarshal(event(id, handler, config, id), &ev))
	ev["data"].(map[string]any)["event"].(map[string]any)["payload"].(map[string]any)["pad"] = strings.Repeat("A", size)
	b, err := json.Marshal(ev)
	require.NoError(t, err)
	return b
}

// TestInflightBytesBound: the intake holds at most MaxInflightBytes of
// event bodies (security issue 12 item 4); concurrency alone let 16 large
// events be decoded at once. Eight 64 KiB events whose action sleeps run
// at most as many at a time as the budget has room for, and every one
// runs once; an event bigger than the whole budget still runs (alone).
func TestInflightBytesBound(t *testing.T) {
	t.Parallel()
	const size = 64 << 10
	for _, tc := range []struct {
		name     string
		budget   int64
		wantPeak int
	}{
		{name: "no pressure: concurrency bounds", budget: 64 << 20, wantPeak: 4},
		{name: "room for two", budget: 2*size + size/2, wantPeak: 2},
		{name: "smaller than one event: one at a time", budget: size / 2, wantPeak: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOpts{})
			cfg := e.config()
			cfg.MaxInflightBytes = tc.budget
			w, _ := e.start(cfg)
			ids := make([]string, 8)
			for i := range ids {
				ids[i] = fmt.Sprintf("big-%d", i)
				body := paddedEvent(t, ids[i], "test#sleep", map[string]any{"sleep_ms": 150}, size)
				e.publishRaw(subjectOf("test#sleep"), map[string]string{"Content-Type": wire.ContentTypeCE, wire.HeaderMsgID: ids[i]}, body)
			}
			require.Eventually(t, func() bool {
				for _, id := range ids {
					if e.rec.Calls(id) != 1 {
						return false
					}
				}
				return true
			}, 30*time.Second, 10*time.Millisecond)
			require.Equal(t, tc.wantPeak, e.rec.PeakSleeping())
			require.Eventually(t, func() bool { return w.budget.inUse() == 0 }, 5*time.Second, 10*time.Millisecond,
				"every byte taken is given back")
		})
	}
}

// TestEventTooLarge: a body above MaxEventBytes is dead-lettered
// invalid_event ("too large") without being decoded, and the letter does
// not keep the body (it could not be redacted without decoding it; a
// secret in it must not be stored): Imbi-Dlq-Body-Omitted gives its size.
// An event at the limit runs.
func TestEventTooLarge(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	cfg := e.config()
	at := paddedEvent(t, "at-limit", "test#ok", nil, 32<<10)
	cfg.MaxEventBytes = len(at)
	e.start(cfg)

	for _, tc := range []struct {
		name, id string
		body     []byte
		tooLarge bool
	}{
		{name: "at the limit runs", id: "at-limit", body: at},
		{name: "one byte over, with a secret inside", id: "over-limit", tooLarge: true,
			body: paddedEvent(t, "over-limit", "test#ok", map[string]any{"password": "sekrit-canary"}, 32<<10+10)},
		{name: "not even JSON", id: "garbage", tooLarge: true, body: []byte(strings.Repeat("\xde\xad", 40<<10))},
	} {
		seq := e.publishRaw(subjectOf("test#ok"), map[string]string{"Content-Type": wire.ContentTypeCE, wire.HeaderMsgID: tc.id,
			"Authorization": "Bearer sekrit-canary"}, tc.body)
		if !tc.tooLarge {
			require.Eventually(t, func() bool { return e.rec.Calls(tc.id) == 1 }, 10*time.Second, 10*time.Millisecond, tc.name)
			continue
		}
		dl := e.waitDLQ(tc.id, 10*time.Second)
		require.Equal(t, string(wire.ReasonInvalidEvent), dl.Header.Get(wire.DLQReason), tc.name)
		require.Contains(t, dl.Header.Get(wire.DLQError), "too large", tc.name)
		require.Empty(t, dl.Data, tc.name)
		require.Equal(t, strconv.Itoa(len(tc.body)), dl.Header.Get(wire.DLQBodyOmitted), tc.name)
		require.Equal(t, wire.Redacted, dl.Header.Get("Authorization"), tc.name)
		require.Zero(t, e.rec.Calls(tc.id), tc.name)
		require.Eventually(t, func() bool { return e.gone(seq) }, 5*time.Second, 20*time.Millisecond, tc.name)
	}
}

// BenchmarkByteBudget is the budget's cost per message on the hot path:
// an uncontended take and give back of a 1.2 KiB body, from as many
// goroutines as GOMAXPROCS.
func BenchmarkByteBudget(b *testing.B) {
	bb := newByteBudget(DefaultMaxInflightBytes)
	stop := make(chan struct{})
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c := bb.cost(1200)
			if !bb.tryAcquire(c) && !bb.acquire(c, stop) {
				b.Fatal("budget refused")
			}
			bb.release(c)
		}
	})
}
