package remote_test

import (
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func countWhere(recs []map[string]any, key, val string) int {
	n := 0
	for _, r := range recs {
		if fmt.Sprint(r[key]) == val {
			n++
		}
	}
	return n
}

// Two hosts in one queue group share the work; killing the one running
// an action gets the message retried (timeout) and done on the other.
func TestTwoHostsShareAndSurviveKill(t *testing.T) {
	e := newEnv(t)
	w := startWorker(t, e.url, workerOpts{args: []string{"--remote-timeout-cap", "4s"}})
	a := startHost(t, e.nc, e.url, "host-a")
	b := startHost(t, e.nc, e.url, "host-b")
	w.waitLog(t, "remote plugin catalog loaded", 10*time.Second)
	require.Equal(t, 2, pingCount(e.nc))

	rec := filepath.Join(t.TempDir(), "share.jsonl")
	for i := range 40 {
		e.publish(event(fmt.Sprintf("share-%d", i), "example-py#record", map[string]any{"record_to": rec}, ""))
	}
	for i := range 40 {
		e.waitDone(fmt.Sprintf("share-%d", i), 20*time.Second)
	}
	pids := map[string]int{}
	for _, r := range records(t, rec) {
		pids[fmt.Sprint(r["pid"])]++
	}
	require.Len(t, pids, 2, "both hosts ran actions: %v", pids)

	slow := filepath.Join(t.TempDir(), "slow.jsonl")
	e.publish(event("kill-1", "example-py#slow", map[string]any{"seconds": 2, "record_to": slow}, ""))
	require.Eventually(t, func() bool { return len(records(t, slow)) > 0 }, 10*time.Second, 20*time.Millisecond)
	victim := fmt.Sprint(records(t, slow)[0]["pid"])
	survivor := b
	if victim == fmt.Sprint(b.cmd.Process.Pid) {
		survivor = a
		b.stop(syscall.SIGKILL, 5*time.Second)
	} else {
		a.stop(syscall.SIGKILL, 5*time.Second)
	}
	e.waitDone("kill-1", 30*time.Second)
	recs := records(t, slow)
	require.Equal(t, 2, countWhere(recs, "phase", "start"), "started on the killed host, then on the other: %v", recs)
	require.Equal(t, 1, countWhere(recs, "phase", "done"))
	require.Equal(t, fmt.Sprint(survivor.cmd.Process.Pid), fmt.Sprint(recs[len(recs)-1]["pid"]))
	require.NotContains(t, e.deadLetters(), "kill-1")
}

// SIGTERM: the host stops taking requests and lets the running action
// finish within its grace; the message completes without a retry.
func TestHostGracefulShutdown(t *testing.T) {
	e := newEnv(t)
	w := startWorker(t, e.url, workerOpts{})
	h := startHost(t, e.nc, e.url, "host")
	w.waitLog(t, "remote plugin catalog loaded", 10*time.Second)
	slow := filepath.Join(t.TempDir(), "slow.jsonl")
	e.publish(event("term-1", "example-py#slow", map[string]any{"seconds": 1.5, "record_to": slow}, ""))
	require.Eventually(t, func() bool { return len(records(t, slow)) > 0 }, 10*time.Second, 20*time.Millisecond)
	require.True(t, h.stop(syscall.SIGTERM, 10*time.Second), "host exits after its in-flight action")
	e.waitDone("term-1", 10*time.Second)
	recs := records(t, slow)
	require.Equal(t, 1, countWhere(recs, "phase", "start"))
	require.Equal(t, 1, countWhere(recs, "phase", "done"))
	require.Contains(t, h.logText(), `"msg": "stopped"`)
}

// With no host at all (--remote-plugins=on) a message retries as
// unavailable and completes once a host starts.
func TestNoHostThenHost(t *testing.T) {
	e := newEnv(t)
	w := startWorker(t, e.url, workerOpts{args: []string{"--remote-plugins", "on",
		"--max-attempts", "100", "--max-deliver", "110", "--backoff-base", "100ms", "--backoff-max", "300ms"}})
	rec := filepath.Join(t.TempDir(), "late.jsonl")
	e.publish(event("late-1", "example-py#record", map[string]any{"record_to": rec}, ""))
	w.waitLog(t, `"reason":"unavailable"`, 10*time.Second)
	require.False(t, e.done("late-1"))
	require.Empty(t, e.deadLetters())
	startHost(t, e.nc, e.url, "host")
	e.waitDone("late-1", 30*time.Second)
	require.Len(t, records(t, rec), 1)
}

// A host with a new plugin version changes the catalog: its new action is
// accepted and the one it removed becomes unknown_handler.
func TestCatalogChange(t *testing.T) {
	e := newEnv(t)
	w := startWorker(t, e.url, workerOpts{})
	v1 := startHost(t, e.nc, e.url, "host-v1")
	w.waitLog(t, "example-py#retired", 10*time.Second)
	rec := filepath.Join(t.TempDir(), "cat.jsonl")
	e.publish(event("cat-1", "example-py#retired", map[string]any{"record_to": rec}, ""))
	e.waitDone("cat-1", 10*time.Second)

	require.True(t, v1.stop(syscall.SIGTERM, 10*time.Second))
	startHost(t, e.nc, e.url, "host-v2", "IMBI_EXAMPLE_PLUGIN_VARIANT=2")
	w.waitLog(t, "example-py#added", 10*time.Second)
	e.publish(event("cat-2", "example-py#added", map[string]any{"record_to": rec}, ""))
	e.publish(event("cat-3", "example-py#retired", map[string]any{"record_to": rec}, ""))
	e.waitDone("cat-2", 10*time.Second)
	dl := e.waitDead("cat-3", 10*time.Second)
	require.Equal(t, "unknown_handler", dl.Reason)
	require.Len(t, records(t, rec), 2)
}

// The worker's InProgress heartbeat keeps a remote action alive past
// --ack-wait: the message is delivered once.
func TestRemoteActionLongerThanAckWait(t *testing.T) {
	e := newEnv(t)
	w := startWorker(t, e.url, workerOpts{args: []string{"--ack-wait", "1s"}})
	startHost(t, e.nc, e.url, "host")
	w.waitLog(t, "remote plugin catalog loaded", 10*time.Second)
	slow := filepath.Join(t.TempDir(), "slow.jsonl")
	e.publish(event("beat-1", "example-py#slow", map[string]any{"seconds": 3, "record_to": slow}, ""))
	e.waitDone("beat-1", 20*time.Second)
	recs := records(t, slow)
	require.Equal(t, 1, countWhere(recs, "phase", "start"), "one delivery: %v", recs)
	require.Equal(t, 1, countWhere(recs, "phase", "done"))
}
