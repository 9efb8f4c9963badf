package cli_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/cli"
	_ "github.com/aweber-imbi/imbi-worker/internal/actions" // the built-in plugins, as in the binary
)

// sampleExpect is a testdata/events/*.expect.json sidecar.
type sampleExpect struct {
	File        string   `json:"file"`
	Outcome     string   `json:"outcome"`
	Reason      string   `json:"reason"`
	LastReason  string   `json:"last_reason"`
	Attempts    int      `json:"attempts"`
	DLQSubject  string   `json:"dlq_subject"`
	PublishArgs []string `json:"publish_args"`
}

// demoListener is the local HTTP endpoint the samples call
// (testdata/events/README.md lists its paths).
type demoListener struct {
	srv  *httptest.Server
	mu   sync.Mutex
	hits map[string]int
}

func newDemoListener(t *testing.T) *demoListener {
	t.Helper()
	l := &demoListener{hits: map[string]int{}}
	l.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.hits[r.URL.Path]++
		n := l.hits[r.URL.Path]
		l.mu.Unlock()
		switch {
		case strings.HasPrefix(r.URL.Path, "/ok/"):
		case strings.HasPrefix(r.URL.Path, "/flaky/"):
			if n == 1 { // no Retry-After: unavailable, an ordinary retry
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		case strings.HasPrefix(r.URL.Path, "/limited/"):
			if n <= 4 { // rate-limited four times (more than --max-attempts), then fine
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusTooManyRequests)
			}
		case strings.HasPrefix(r.URL.Path, "/fail/"):
			w.WriteHeader(http.StatusInternalServerError)
		case strings.HasPrefix(r.URL.Path, "/reject/"):
			w.WriteHeader(http.StatusUnprocessableEntity)
		case strings.HasPrefix(r.URL.Path, "/slow/"):
			select {
			case <-r.Context().Done():
			case <-time.After(2 * time.Second): // far past --plugin-timeout
			}
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(l.srv.Close)
	return l
}

func (l *demoListener) count(path string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.hits[path]
}

// TestSampleEvents runs every sample of testdata/events through the real
// binary's commands in process: `run` (embedded server, built-in plugins),
// `publish` and `dlq list`, and checks each ends as its sidecar says. It
// keeps the samples the demo publishes honest.
func TestSampleEvents(t *testing.T) {
	t.Setenv("ACTIONS_IMBI_TOKEN", "") // 12-credentials-missing
	t.Setenv("IMBI_NEO4J_URL", "")     // no credential store: scripts/test.sh exports the test Neo4j's
	if testing.Short() {
		t.Skip("end to end, ~10 s")
	}
	listener := newDemoListener(t)
	dataDir := t.TempDir()

	run := cli.NewRootCmd()
	var runOut cli.SyncBuffer
	run.SetOut(&runOut)
	run.SetErr(&runOut)
	run.SetArgs([]string{"run", "--data-dir", dataDir, "--embedded-port", "0", "--log-format", "text", "--log-level", "warn",
		"--plugin-timeout", "300ms", "--max-attempts", "3", "--backoff-base", "50ms", "--backoff-max", "200ms", "--shutdown-grace", "1s",
		"--http-allow-private"}) // the demo listener is on loopback
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(20 * time.Second):
			t.Error("run did not stop")
		}
	})
	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(dataDir, cli.URLFile))
		return err == nil
	}, 20*time.Second, 20*time.Millisecond, "run wrote no URL file: %s", &runOut)
	env := &toolEnv{dataDir: dataDir}

	expects, err := filepath.Glob(filepath.Join("..", "testdata", "events", "*.expect.json"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(expects), 15)
	samples := map[string]sampleExpect{}
	for _, path := range expects {
		raw, err := os.ReadFile(path)
		require.NoError(t, err)
		var exp sampleExpect
		require.NoError(t, json.Unmarshal(raw, &exp), path)
		input, err := os.ReadFile(filepath.Join(filepath.Dir(path), exp.File))
		require.NoError(t, err, path)
		body := strings.ReplaceAll(string(input), "@DEMO_HTTP_URL@", listener.srv.URL)
		out, _, err := env.runTool(t, body, append([]string{"publish", "--json"}, exp.PublishArgs...)...)
		require.NoError(t, err, "%s: %s", exp.File, out)
		var sum struct {
			FirstID    string `json:"first_id"`
			Duplicates int    `json:"duplicates"`
		}
		require.NoError(t, json.Unmarshal([]byte(out), &sum))
		if exp.Outcome == "deduplicated" {
			require.Equal(t, 1, sum.Duplicates, exp.File)
			continue
		}
		require.Zero(t, sum.Duplicates, exp.File)
		samples[sum.FirstID] = exp
	}

	// Wait until every dead letter has arrived, then check each sample.
	wantDead := 0
	for _, exp := range samples {
		if exp.Outcome == "dead_letter" {
			wantDead++
		}
	}
	var letters []struct {
		Handler    string `json:"handler"`
		Subject    string `json:"subject"`
		Reason     string `json:"reason"`
		LastReason string `json:"last_reason"`
		Attempts   int    `json:"attempts"`
		EventID    string `json:"event_id"`
		OrigSubj   string `json:"original_subject"`
	}
	require.Eventually(t, func() bool {
		out, _, err := env.runTool(t, "", "dlq", "list", "--json")
		if err != nil || json.Unmarshal([]byte(out), &letters) != nil {
			return false
		}
		return len(letters) >= wantDead
	}, 30*time.Second, 200*time.Millisecond, "dead letters: %d of %d; worker output:\n%s", len(letters), wantDead, &runOut)

	require.Len(t, letters, wantDead, "no other dead letters (successes stay out)")
	require.Len(t, samples, len(expects)-1, "every sample but the duplicate was stored")
	byID := map[string]int{}
	for i, l := range letters {
		byID[l.EventID] = i
	}
	for id, exp := range samples {
		i, dead := byID[id]
		if exp.File == "05-not-a-cloudevent.txt" {
			// Not a CloudEvent: no event id; find it by subject.
			for j, l := range letters {
				if l.Subject == exp.DLQSubject && l.EventID == "" {
					i, dead = j, true
				}
			}
		}
		switch exp.Outcome {
		case "success", "retried_then_success", "paused_then_success":
			require.False(t, dead, "%s must not be dead-lettered", exp.File)
		case "dead_letter":
			require.True(t, dead, "%s must be dead-lettered", exp.File)
			l := letters[i]
			require.Equal(t, exp.Reason, l.Reason, exp.File)
			require.Equal(t, exp.LastReason, l.LastReason, exp.File)
			require.Equal(t, exp.DLQSubject, l.Subject, exp.File)
			if exp.Attempts > 0 {
				require.Equal(t, exp.Attempts, l.Attempts, exp.File)
			}
		default:
			t.Fatalf("%s: unknown outcome %q", exp.File, exp.Outcome)
		}
	}
	require.Equal(t, 1, listener.count("/ok/checkout"), "01 ran once; its duplicate 04 did not run")
	require.Equal(t, 1, listener.count("/ok/binary"))
	require.Equal(t, 2, listener.count("/flaky/02"), "one retry, then success")
	// Rate-limited four times with --max-attempts 3: deferrals use no
	// attempt (v1.1 §B), so the fifth request succeeds.
	require.Eventually(t, func() bool { return listener.count("/limited/15") == 5 }, 30*time.Second, 50*time.Millisecond)
	require.Equal(t, 1, listener.count("/reject/16"), "a permanent failure is not retried")
	require.Equal(t, 3, listener.count("/fail/17"), "retried up to --max-attempts")

	// Replay a letter whose cause is not fixed: the worker runs it again
	// and dead-letters it again, as a new letter (the replay's distinct
	// Nats-Msg-Id keeps the dead-letter stream's dedup from dropping it)
	// that knows it was replayed once.
	out, _, err := env.runTool(t, "", "dlq", "replay", "--handler", "nosuch#thing", "--json")
	require.NoError(t, err, out)
	require.Contains(t, out, `"msg_id": "demo-09.0.replay.1"`)
	var again []struct {
		Seq     uint64 `json:"seq"`
		EventID string `json:"event_id"`
		Replays int    `json:"replays"`
	}
	require.Eventually(t, func() bool {
		out, _, err := env.runTool(t, "", "dlq", "list", "--handler", "nosuch", "--json")
		return err == nil && json.Unmarshal([]byte(out), &again) == nil && len(again) == 1
	}, 20*time.Second, 100*time.Millisecond)
	require.Equal(t, "demo-09.0", again[0].EventID)
	require.Equal(t, 1, again[0].Replays)
}
