package worker

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/actions/httprequest"
	"github.com/aweber-imbi/imbi-worker/internal/dispatch"
	"github.com/aweber-imbi/imbi-worker/internal/dispatch/dispatchtest"
	"github.com/aweber-imbi/imbi-worker/internal/dlq"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// hitServer is the local HTTP endpoint of http#request steps: it records
// when each path's request arrived and when its response went out, and
// delays the paths in delay.
type hitServer struct {
	mu    sync.Mutex
	hits  []hit
	delay map[string]time.Duration
	srv   *httptest.Server
}

type hit struct {
	path       string
	start, end time.Time
}

func newHitServer(t *testing.T, delay map[string]time.Duration) *hitServer {
	h := &hitServer{delay: delay}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		time.Sleep(h.delay[r.URL.Path])
		h.mu.Lock()
		h.hits = append(h.hits, hit{path: r.URL.Path, start: start, end: time.Now()})
		h.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hitServer) snapshot() []hit {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hit(nil), h.hits...)
}

func (h *hitServer) count(path string) int {
	n := 0
	for _, x := range h.snapshot() {
		if x.path == path {
			n++
		}
	}
	return n
}

// url is an http#request handler_config for path.
func (h *hitServer) url(path string) map[string]any {
	return map[string]any{"url": h.srv.URL + path, "method": "POST"}
}

// overlapped reports whether two requests were in flight at once.
func overlapped(hits []hit) bool {
	for i := range hits {
		for j := range hits {
			if i != j && hits[j].start.After(hits[i].start) && hits[j].start.Before(hits[i].end) {
				return true
			}
		}
	}
	return false
}

func byPath(hits []hit, path string) hit {
	for _, h := range hits {
		if h.path == path {
			return h
		}
	}
	return hit{}
}

// step is one rule of a test chain.
type step struct {
	handler string
	config  any
}

// chainEnv is an env whose registry also has http#request (private
// addresses allowed: the hit server is on loopback).
func chainEnv(t *testing.T, o envOpts) *env {
	e := newEnv(t, o)
	reg, err := dispatchtest.Registry(&dispatchtest.Plugin{Slug: "test", Rec: e.rec}, httprequest.Plugin{AllowPrivate: true})
	require.NoError(t, err)
	e.disp = func() *dispatch.Dispatcher {
		return &dispatch.Dispatcher{Registry: reg, DefaultTimeout: 2 * time.Second, AbandonGrace: 50 * time.Millisecond}
	}
	return e
}

func ruleOf(s step, ordinal int) map[string]any {
	return map[string]any{"id": "r-" + strconv.Itoa(ordinal), "handler": s.handler, "handler_config": s.config, "ordinal": ordinal}
}

// chainEvent is the first step of a chain of steps (ordinals 0..n-1)
// with the given chain member overrides (nil chain: steps[0] alone, no
// chain member).
func chainEvent(id string, s step, payloadID string, chain map[string]any) []byte {
	var ev map[string]any
	if err := json.Unmarshal(event(id, s.handler, s.config, payloadID), &ev); err != nil {
		panic(err)
	}
	data := ev["data"].(map[string]any)
	if chain != nil {
		data["chain"] = chain
	}
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	return b
}

func chainOf(chainID, onFailure string, steps []step) map[string]any {
	next := []any{}
	for i, s := range steps[1:] {
		next = append(next, map[string]any{"rule": ruleOf(s, i+1), "plugin": map[string]any{"id": "pl-1", "slug": strings.Split(s.handler, "#")[0]}})
	}
	c := map[string]any{"id": chainID, "position": 0, "next": next}
	if onFailure != "" {
		c["on_failure"] = onFailure
	}
	return c
}

// publishChain publishes the first step of steps (CE id <delivery>.0).
func (e *env) publishChain(chainID, onFailure, payloadID string, steps []step) {
	e.t.Helper()
	id := "d-" + chainID + ".0"
	e.publishRaw(subjectOf(steps[0].handler), map[string]string{"Content-Type": wire.ContentTypeCE, wire.HeaderMsgID: id},
		chainEvent(id, steps[0], payloadID, chainOf(chainID, onFailure, steps)))
}

// TestChainOrder: three http#request steps, step 1 answered after 300 ms.
// With a chain the server sees 1, 2, 3, each after the one before it
// answered; the same three rules without chain overlap (the control that
// shows the test can fail).
func TestChainOrder(t *testing.T) {
	for _, tc := range []struct {
		name  string
		chain bool
	}{{"chain", true}, {"no chain (control)", false}} {
		t.Run(tc.name, func(t *testing.T) {
			e := chainEnv(t, envOpts{})
			srv := newHitServer(t, map[string]time.Duration{"/s1": 300 * time.Millisecond})
			steps := []step{{"http#request", srv.url("/s1")}, {"http#request", srv.url("/s2")}, {"http#request", srv.url("/s3")}}
			e.start(e.config())
			if tc.chain {
				e.publishChain("c-order", "", "p-order", steps)
			} else {
				for i, s := range steps {
					id := "d-order." + strconv.Itoa(i)
					e.publishRaw(subjectOf(s.handler), map[string]string{"Content-Type": wire.ContentTypeCE, wire.HeaderMsgID: id},
						chainEvent(id, s, "p-order", nil))
				}
			}
			require.Eventually(t, func() bool { return len(srv.snapshot()) == 3 && e.streamMsgs() == 0 }, 10*time.Second, 10*time.Millisecond)
			hits := srv.snapshot()
			if !tc.chain {
				require.True(t, byPath(hits, "/s2").start.Before(byPath(hits, "/s1").end),
					"without a chain step 2 should arrive while step 1 is still running: %+v", hits)
				return
			}
			require.Equal(t, []string{"/s1", "/s2", "/s3"}, []string{hits[0].path, hits[1].path, hits[2].path})
			require.False(t, overlapped(hits), "chain steps overlapped: %+v", hits)
			require.False(t, hits[1].start.Before(hits[0].end), "step 2 arrived before step 1 answered")
			require.Zero(t, e.dlq.count())
		})
	}
}

// TestChainRetriesHold: step 2 fails twice, then succeeds; step 3 runs
// once, after step 2's success.
func TestChainRetriesHold(t *testing.T) {
	e := chainEnv(t, envOpts{})
	srv := newHitServer(t, nil)
	e.start(e.config())
	e.publishChain("c-retry", "", "p-retry", []step{
		{"http#request", srv.url("/s1")}, {"test#flaky", map[string]any{"fail_times": 2}}, {"http#request", srv.url("/s3")}})
	require.Eventually(t, func() bool { return srv.count("/s3") == 1 && e.streamMsgs() == 0 }, 10*time.Second, 10*time.Millisecond)
	times := e.rec.Times("p-retry")
	require.Len(t, times, 3, "step 2: two failures and a success")
	hits := srv.snapshot()
	require.Len(t, hits, 2)
	require.True(t, hits[0].end.Before(times[0]), "step 2 ran before step 1 answered")
	require.True(t, hits[1].start.After(times[2]), "step 3 ran before step 2 succeeded")
	require.Zero(t, e.dlq.count())
}

// letterOf waits for the dead letter of ceID and returns it from the store.
func (e *env) letterOf(store *dlq.Store, ceID string) dlq.Letter {
	e.t.Helper()
	var out dlq.Letter
	require.Eventually(e.t, func() bool {
		ls, err := store.List(context.Background(), dlq.Filter{})
		require.NoError(e.t, err)
		for _, l := range ls {
			if l.EventID == ceID {
				out = l
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond, "no dead letter for %s", ceID)
	return out
}

// TestChainFailurePolicy: continue, stop, and replay of each.
func TestChainFailurePolicy(t *testing.T) {
	for _, tc := range []struct {
		name          string
		onFailure     string
		wantContinued bool
		// after the replay of step 2's letter (step 2 then succeeds)
		wantS3AfterReplay int
	}{
		{name: "continue (default)", onFailure: "", wantContinued: true, wantS3AfterReplay: 1},
		{name: "continue", onFailure: "continue", wantContinued: true, wantS3AfterReplay: 1},
		{name: "stop", onFailure: "stop", wantContinued: false, wantS3AfterReplay: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Idempotency off and a short dedup window: only the
			// Imbi-Chain-Continued header keeps a replayed continued step
			// from running step 3 again.
			off := false
			e := chainEnv(t, envOpts{idempotency: &off, dupWindow: 100 * time.Millisecond})
			srv := newHitServer(t, nil)
			e.start(e.config())
			chainID := "c-" + strings.ReplaceAll(tc.name, " ", "-")
			chainID = strings.NewReplacer("(", "", ")", "").Replace(chainID)
			// flaky fails 3 times: max_attempts (3) dead-letters it; the
			// replay is its 4th call, which succeeds.
			e.publishChain(chainID, tc.onFailure, "p-"+chainID, []step{
				{"http#request", srv.url("/s1")}, {"test#flaky", map[string]any{"fail_times": 3}}, {"http#request", srv.url("/s3")}})
			store, err := dlq.Open(context.Background(), e.js, dlq.Config{})
			require.NoError(t, err)
			l := e.letterOf(store, chainID+".1")
			require.Equal(t, chainID, l.Header.Get(wire.DLQChainID))
			require.Equal(t, "1", l.Header.Get(wire.DLQChainPosition))
			if tc.wantContinued {
				require.Equal(t, "true", l.Header.Get(wire.DLQChainContinued))
				require.Eventually(t, func() bool { return srv.count("/s3") == 1 }, 10*time.Second, 10*time.Millisecond)
			} else {
				require.Empty(t, l.Header.Get(wire.DLQChainContinued))
			}
			require.Eventually(t, func() bool { return e.streamMsgs() == 0 }, 10*time.Second, 10*time.Millisecond)
			time.Sleep(300 * time.Millisecond) // past the dedup window; a wrong step 3 would run now
			if !tc.wantContinued {
				require.Zero(t, srv.count("/s3"), "stop: step 3 ran")
			}

			_, err = store.Replay(context.Background(), l, false)
			require.NoError(t, err)
			require.Eventually(t, func() bool { return e.rec.Calls("p-"+chainID) == 4 && e.streamMsgs() == 0 }, 10*time.Second, 10*time.Millisecond)
			require.Eventually(t, func() bool { return srv.count("/s3") == tc.wantS3AfterReplay }, 10*time.Second, 10*time.Millisecond)
			time.Sleep(300 * time.Millisecond)
			require.Equal(t, tc.wantS3AfterReplay, srv.count("/s3"), "step 3 runs")
			require.Equal(t, 1, srv.count("/s1"))
			if !tc.wantContinued {
				times := e.rec.Times("p-" + chainID)
				require.True(t, srv.snapshot()[1].start.After(times[3]), "resumed step 3 ran before step 2")
			}
		})
	}
}

// TestChainPoison: bad chains are dead-lettered invalid_event and the
// messages behind them run.
func TestChainPoison(t *testing.T) {
	long := []step{}
	for range wire.MaxChainSteps + 1 {
		long = append(long, step{"test#ok", nil})
	}
	tests := []struct {
		name  string
		id    string
		chain map[string]any
	}{
		{"too long", "d-long.0", chainOf("c-long", "", long)},
		{"bad handler in next", "d-badh.0", func() map[string]any {
			c := chainOf("c-badh", "", []step{{"test#ok", nil}, {"test#ok", nil}})
			c["next"].([]any)[0].(map[string]any)["rule"].(map[string]any)["handler"] = "not a handler"
			return c
		}()},
		{"position does not match", "d-pos.0", func() map[string]any {
			c := chainOf("c-pos", "", []step{{"test#ok", nil}, {"test#ok", nil}})
			c["position"] = 1 // a later step's id would be c-pos.0
			return c
		}()},
		{"ordinals do not increase", "d-ord.0", func() map[string]any {
			c := chainOf("c-ord", "", []step{{"test#ok", nil}, {"test#ok", nil}})
			c["next"].([]any)[0].(map[string]any)["rule"].(map[string]any)["ordinal"] = 0
			return c
		}()},
	}
	e := chainEnv(t, envOpts{})
	e.start(e.config())
	for _, tc := range tests {
		e.publishRaw(subjectOf("test#ok"), map[string]string{"Content-Type": wire.ContentTypeCE, wire.HeaderMsgID: tc.id},
			chainEvent(tc.id, step{"test#ok", nil}, "p-poison", tc.chain))
	}
	e.publish("after-poison", "test#ok", nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := e.waitDLQ(tc.id, 10*time.Second)
			require.Equal(t, string(wire.ReasonInvalidEvent), l.Header.Get(wire.DLQReason))
			require.Contains(t, l.Header.Get(wire.DLQError), "data.chain")
		})
	}
	require.Eventually(t, func() bool { return e.rec.Calls("after-poison") == 1 && e.streamMsgs() == 0 }, 10*time.Second, 10*time.Millisecond)
	require.Zero(t, e.rec.Calls("p-poison"), "a poison chain's step ran")
}

// TestChainCrashBetweenContinuationAndAck: step 2's continuation is
// published and its done-marker stored, then the worker "crashes" before
// the ack (the message is left for redelivery, as after kill -9). The
// redelivery is a done-marker Duplicate that publishes step 3 again with
// the same id: the duplicate window drops it, and with a window too short
// for that, step 3's done-marker does. Every step runs exactly once.
func TestChainCrashBetweenContinuationAndAck(t *testing.T) {
	for _, tc := range []struct {
		name      string
		dupWindow time.Duration
	}{{"dedup window absorbs", 0}, {"done-marker absorbs", 100 * time.Millisecond}} {
		t.Run(tc.name, func(t *testing.T) {
			e := chainEnv(t, envOpts{ackWait: time.Second, dupWindow: tc.dupWindow})
			srv := newHitServer(t, nil)
			cfg := e.config()
			var crashed sync.Once
			fired := make(chan struct{})
			cfg.hooks.afterDone = func(ceID string) bool {
				crash := false
				if ceID == "c-crash.1" {
					crashed.Do(func() { crash = true; close(fired) })
				}
				return crash
			}
			e.start(cfg)
			e.publishChain("c-crash", "", "p-crash", []step{
				{"http#request", srv.url("/s1")}, {"http#request", srv.url("/s2")}, {"http#request", srv.url("/s3")}})
			select {
			case <-fired:
			case <-time.After(10 * time.Second):
				t.Fatal("the crash hook never fired")
			}
			require.Eventually(t, func() bool { return srv.count("/s3") == 1 && e.streamMsgs() == 0 && e.consumerAckPending() == 0 },
				15*time.Second, 20*time.Millisecond)
			time.Sleep(300 * time.Millisecond)
			for _, p := range []string{"/s1", "/s2", "/s3"} {
				require.Equal(t, 1, srv.count(p), p)
			}
			require.Zero(t, e.dlq.count())
		})
	}
}
