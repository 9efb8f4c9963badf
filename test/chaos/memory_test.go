package chaos_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/test/chaos/chaosplugin"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// TestMemoryBoundedLargeEvents is security issue 12 item 4: a backlog of
// large events must not push the worker past its pod's memory limit
// (256 Mi, deploy/kubernetes) and must lose nothing. The built binary runs
// in its own process with the shipped memory settings (GOMEMLIMIT=220MiB
// from deploy/kubernetes/configmap.yaml, GOGC as `run` sets it,
// worker.DefaultGCPercent) and the shipped concurrency (16, idempotency on)
// against a real nats-server; its peak RSS is VmHWM from /proc.
//
// The backlog is IMBI_MEMTEST_EVENTS (100) events of 1 MiB, which run, and
// three of 7 MiB, above the worker's --max-event-bytes (set to 2 MiB here,
// with the stream's --max-msg-size raised to 8 MiB so the server stores
// them: a stream provisioned before the limit existed, or by hand), which
// must be dead-lettered invalid_event without their body.
func TestMemoryBoundedLargeEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs nats-server and the worker binary")
	}
	n := envInt(t, "IMBI_MEMTEST_EVENTS", 100)
	const (
		eventBytes = 1 << 20
		bigBytes   = 7 << 20
		bigEvents  = 3
		limitRSS   = 256 << 20
	)
	dir := t.TempDir()
	bins := buildBinaries(t, dir)
	recordDir := filepath.Join(dir, "records")
	require.NoError(t, os.MkdirAll(recordDir, 0o755))
	srv := newNATSServer(t, bins.natsServer, dir)
	srv.start()

	common := []string{"--nats-url", srv.url()}
	out, err := runOnce(bins.worker, append([]string{"streams", "apply", "--max-msg-size", strconv.Itoa(8 << 20)}, common...)...)
	require.NoError(t, err, "streams apply:\n%s", out)

	nc, err := nats.Connect(srv.url())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	cfg, err := json.Marshal(chaosplugin.RecordConfig{Label: "memory"})
	require.NoError(t, err)
	handler := chaosplugin.Slug + "#" + chaosplugin.ActionRecord
	publishBig := func(id string, size int) {
		m := recordMessage(id, handler, cfg)
		m.Data.Event.Payload["components"] = sbomComponents(size)
		msg, err := encodeMessage(ctx, m)
		require.NoError(t, err)
		_, err = js.PublishMsg(ctx, msg)
		require.NoError(t, err, "publish %s (%d bytes)", id, len(msg.Data))
	}
	for i := range n {
		publishBig(fmt.Sprintf("mem.%04d", i), eventBytes)
	}
	for i := range bigEvents {
		publishBig(fmt.Sprintf("mem.big.%d", i), bigBytes)
	}
	// IMBI_MEMTEST_BIG_RUN=1 (with IMBI_MEMTEST_ARGS raising
	// --max-event-bytes) expects the big events to run instead.
	wantRuns, wantLetters := n, uint64(bigEvents)
	if os.Getenv("IMBI_MEMTEST_BIG_RUN") == "1" {
		wantRuns, wantLetters = n+bigEvents, 0
	}

	args := []string{"run", "--nats-url", srv.url(), "--no-provision",
		"--concurrency", "16", "--max-event-bytes", strconv.Itoa(2 << 20),
		"--admin-addr", "127.0.0.1:0", "--shutdown-grace", "5s"}
	// IMBI_MEMTEST_ARGS adds worker flags (to compare settings).
	args = append(args, strings.Fields(os.Getenv("IMBI_MEMTEST_ARGS"))...)
	worker := startProc(t, "worker", filepath.Join(dir, "worker.log"),
		[]string{"IMBI_CHAOS_RECORD_DIR=" + recordDir, "GOMEMLIMIT=220MiB"}, bins.worker, args...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(tail(filepath.Join(dir, "worker.log"), 30))
		}
	})

	stream, err := js.Stream(ctx, wire.DefaultDLQStream)
	require.NoError(t, err)
	cons, err := js.Consumer(ctx, wire.DefaultStream, wire.DefaultConsumer)
	require.NoError(t, err)
	var recorded map[string]int
	var letters uint64
	for {
		require.False(t, worker.exited(), "worker exited: %v", worker.err)
		recorded, err = chaosplugin.ReadRecords(recordDir)
		require.NoError(t, err)
		si, err := stream.Info(ctx)
		require.NoError(t, err)
		letters = si.State.Msgs
		ci, err := cons.Info(ctx)
		require.NoError(t, err)
		if len(recorded) == wantRuns && letters == wantLetters && ci.NumPending == 0 && ci.NumAckPending == 0 {
			break
		}
		require.NoError(t, ctx.Err(), "recorded %d/%d, dead letters %d/%d, pending %d, ack pending %d",
			len(recorded), wantRuns, letters, wantLetters, ci.NumPending, ci.NumAckPending)
		time.Sleep(100 * time.Millisecond)
	}
	hwm := vmHWM(t, worker.cmd.Process.Pid)
	t.Logf("peak RSS (VmHWM) %.1f MiB; %d events ran, %d dead letters", float64(hwm)/(1<<20), len(recorded), letters)
	worker.kill(syscall.SIGTERM)
	require.True(t, worker.wait(30*time.Second), "worker did not stop")

	for id, runs := range recorded {
		require.Equal(t, 1, runs, "%s ran %d times", id, runs)
	}
	for seq := uint64(1); seq <= wantLetters; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		require.NoError(t, err)
		require.Equal(t, string(wire.ReasonInvalidEvent), m.Header.Get(wire.DLQReason))
		require.Contains(t, m.Header.Get(wire.DLQError), "too large")
		require.Empty(t, m.Data, "an event above --max-event-bytes is dead-lettered without its body")
		require.NotEmpty(t, m.Header.Get(wire.DLQBodyOmitted))
	}
	require.Less(t, hwm, int64(limitRSS), "peak RSS %d MiB is over the pod limit", hwm>>20)
}

// vmHWM is a process's peak resident set size in bytes (/proc/PID/status).
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			require.NoError(t, err)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}

// sbomComponents is about size bytes of JSON shaped like an SBOM's
// component list: many small objects, which is what costs memory when
// decoded (a map per object), unlike one long string.
func sbomComponents(size int) []any {
	var out []any
	for i, n := 0, 0; n < size; i++ {
		c := map[string]any{"type": "library", "name": fmt.Sprintf("pkg-%d", i), "version": fmt.Sprintf("1.2.%d", i),
			"purl": fmt.Sprintf("pkg:npm/pkg-%d@1.2.%d", i, i)}
		out = append(out, c)
		n += 80 + 4*len(strconv.Itoa(i))
	}
	return out
}
