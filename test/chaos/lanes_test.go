package chaos_test

// Rate-limit lanes across processes (wire-contract v1.1 §B): two
// imbi-worker-chaos processes on one nats-server share the imbi_lanes
// bucket. A 429 on one pauses the lane; the other, which never saw the
// rate limit, holds that lane's messages until the pause ends and runs
// another lane's at once.

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/lanes"
	"github.com/aweber-imbi/imbi-worker/publisher"
	"github.com/aweber-imbi/imbi-worker/wire"
)

func TestLaneSharedAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("process suite; skipped with -short")
	}
	dir := t.TempDir()
	bins := buildBinaries(t, dir)
	ns := newNATSServer(t, bins.natsServer, dir)
	ns.start()

	var (
		mu   sync.Mutex
		hits = map[string][]time.Time{}
	)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits[r.URL.Path] = append(hits[r.URL.Path], time.Now())
		n := len(hits[r.URL.Path])
		mu.Unlock()
		if strings.HasPrefix(r.URL.Path, "/limited/") && n == 1 {
			w.Header().Set("Retry-After", "4")
			w.WriteHeader(http.StatusTooManyRequests)
		}
	}))
	t.Cleanup(api.Close)
	hitTimes := func(path string) []time.Time {
		mu.Lock()
		defer mu.Unlock()
		return append([]time.Time(nil), hits[path]...)
	}

	workers := map[string]*proc{}
	for _, name := range []string{"lane-a", "lane-b"} {
		logPath := filepath.Join(dir, name+".log")
		workers[name] = startProc(t, name, logPath, nil, bins.worker, "run", "--nats-url", ns.url(),
			"--worker-id", name, "--max-attempts", "2", "--admin-addr", "", "--http-allow-private",
			"--log-level", "debug", "--log-format", "json", "--shutdown-grace", "2s")
		require.Eventually(t, func() bool {
			b, _ := os.ReadFile(logPath)
			return strings.Contains(string(b), `"worker started"`)
		}, 60*time.Second, 50*time.Millisecond, "%s did not start:\n%s", name, tail(logPath, 20))
	}

	nc, err := nats.Connect(ns.url())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	pub, err := publisher.New(nc, publisher.Config{})
	require.NoError(t, err)
	t.Cleanup(pub.Close)
	send := func(id, path, pluginID string) {
		t.Helper()
		m := recordMessageFor(id, "http#request", json.RawMessage(`{"url": "`+api.URL+path+`"}`), pluginID)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := pub.Publish(ctx, m)
		require.NoError(t, err)
	}

	// The rate limit: whichever replica runs it pauses lane http/pl-a.
	send("lane-1", "/limited/1", "pl-a")
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	store, err := lanes.Open(context.Background(), js, wire.DefaultLanesBucket)
	require.NoError(t, err)
	var st lanes.State
	require.Eventually(t, func() bool {
		l, err := store.List(context.Background())
		if err != nil || len(l) != 1 {
			return false
		}
		st = l[0]
		return true
	}, 20*time.Second, 20*time.Millisecond)
	require.Equal(t, lanes.Key{Plugin: "http", PluginID: "pl-a"}, st.Key)
	pauser := strings.TrimPrefix(st.SetBy, "worker ")
	other := "lane-a"
	if pauser == "lane-a" {
		other = "lane-b"
	}
	// Only the replica that never saw the 429 is left.
	workers[pauser].kill(syscall.SIGTERM)
	require.True(t, workers[pauser].wait(20*time.Second), "%s did not stop", pauser)
	require.True(t, time.Now().Before(st.PausedUntil), "the pause must still hold for the rest of the test")

	for _, id := range []string{"lane-2", "lane-3", "lane-4"} {
		send(id, "/ok/"+id, "pl-a") // same lane: must wait
	}
	send("lane-5", "/ok/lane-5", "pl-b") // another credential set: its own lane
	require.Eventually(t, func() bool { return len(hitTimes("/ok/lane-5")) == 1 }, 10*time.Second, 20*time.Millisecond)
	require.True(t, hitTimes("/ok/lane-5")[0].Before(st.PausedUntil), "another lane's message ran while the lane was paused")

	for _, id := range []string{"lane-2", "lane-3", "lane-4"} {
		require.Eventually(t, func() bool { return len(hitTimes("/ok/"+id)) == 1 }, 30*time.Second, 20*time.Millisecond)
		require.False(t, hitTimes("/ok/" + id)[0].Before(st.PausedUntil), "%s ran before the pause ended", id)
	}
	require.Eventually(t, func() bool { return len(hitTimes("/limited/1")) == 2 }, 30*time.Second, 20*time.Millisecond)

	// The survivor deferred them from the bucket's pause, and nothing was dead-lettered.
	deferred := 0
	f, err := os.Open(filepath.Join(dir, other+".log"))
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), `"lane paused; deferred"`) {
			deferred++
		}
	}
	require.GreaterOrEqual(t, deferred, 3, "the other replica deferred the lane's messages")
	dlq, err := js.Stream(context.Background(), wire.DefaultDLQStream)
	require.NoError(t, err)
	info, err := dlq.Info(context.Background())
	require.NoError(t, err)
	require.Zero(t, info.State.Msgs, "no dead letters")
	workers[other].kill(syscall.SIGTERM)
	require.True(t, workers[other].wait(20*time.Second))
}
