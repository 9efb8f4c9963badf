package chaos_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
)

// This file runs real processes for the crash suite: a nats-server built
// from the module's own dependency and imbi-worker-chaos replicas. Every
// process is started here, tracked by its pid and killed by pid in cleanup.

// binaries are the executables a process suite runs.
type binaries struct {
	natsServer string
	worker     string
}

// buildBinaries compiles nats-server (the version go.mod pins) and the
// chaos worker into dir. Both builds hit the Go build cache after the first
// run, so this costs seconds, not minutes.
func buildBinaries(t *testing.T, dir string) binaries {
	t.Helper()
	b := binaries{
		natsServer: filepath.Join(dir, "nats-server"),
		worker:     filepath.Join(dir, "imbi-worker-chaos"),
	}
	for _, job := range []struct{ out, pkg string }{
		{b.natsServer, "github.com/nats-io/nats-server/v2"},
		{b.worker, "github.com/aweber-imbi/imbi-worker/test/chaos/cmd/imbi-worker-chaos"},
	} {
		cmd := exec.Command("go", "build", "-o", job.out, job.pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "go build %s:\n%s", job.pkg, out)
	}
	return b
}

// freePort asks the kernel for a free loopback port. The port is released
// before nats-server binds it; a collision in that window fails the start
// loudly rather than silently.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	return port
}

// proc is one started process and the log file it writes to.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error // exit status, valid after done is closed
}

func startProc(t *testing.T, name, logPath string, env []string, bin string, args ...string) *proc {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	require.NoError(t, err)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(isolatedEnv(), env...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	require.NoError(t, cmd.Start(), "start %s", name)
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = logf.Close()
		close(p.done)
	}()
	t.Cleanup(func() { p.kill(syscall.SIGKILL) })
	return p
}

// kill sends sig to this process (by pid) if it is still running.
func (p *proc) kill(sig syscall.Signal) {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(sig)
	}
}

// wait waits for the process to exit, at most d.
func (p *proc) wait(d time.Duration) (exited bool) {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// exitCode is the exit status (-1 when killed by a signal).
func (p *proc) exitCode() int {
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		return -1
	}
	return 0
}

// natsServer is a nats-server process with JetStream on a file store; it
// keeps its port and store directory across restarts.
type natsServer struct {
	t      *testing.T
	bin    string
	dir    string
	port   int
	starts int
	p      *proc
}

func newNATSServer(t *testing.T, bin, dir string) *natsServer {
	return &natsServer{t: t, bin: bin, dir: dir, port: freePort(t)}
}

func (s *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.port) }

// start launches the server and waits until it accepts clients with
// JetStream ready.
func (s *natsServer) start() {
	s.t.Helper()
	s.starts++
	store := filepath.Join(s.dir, "jetstream")
	logPath := filepath.Join(s.dir, fmt.Sprintf("nats-server-%d.log", s.starts))
	// max_payload has no command-line flag: 8 MiB like the embedded
	// server, so big events fit in both.
	conf := filepath.Join(s.dir, "nats-server.conf")
	require.NoError(s.t, os.WriteFile(conf, []byte("max_payload: 8388608\n"), 0o644))
	s.p = startProc(s.t, "nats-server", logPath, nil, s.bin,
		"-c", conf, "-js", "-sd", store, "-a", "127.0.0.1", "-p", strconv.Itoa(s.port))
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if s.p.exited() {
			s.t.Fatalf("nats-server exited at start: %v\n%s", s.p.err, tail(logPath, 30))
		}
		nc, err := nats.Connect(s.url(), nats.Timeout(time.Second))
		if err == nil {
			js, jerr := nc.JetStream()
			if jerr == nil {
				if _, aerr := js.AccountInfo(); aerr == nil {
					nc.Close()
					return
				}
			}
			nc.Close()
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("nats-server not ready after 30s\n%s", tail(logPath, 30))
}

// stop signals the server and waits for it to exit.
func (s *natsServer) stop(sig syscall.Signal) {
	s.t.Helper()
	s.p.kill(sig)
	if !s.p.wait(30 * time.Second) {
		s.p.kill(syscall.SIGKILL)
		s.p.wait(10 * time.Second)
	}
}

// replica is one worker "slot" whose process is killed and restarted.
type replica struct {
	t     *testing.T
	name  string
	bin   string
	dir   string
	env   []string
	args  []string
	mu    sync.Mutex
	p     *proc
	lives int
}

func (r *replica) start() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lives++
	logPath := filepath.Join(r.dir, fmt.Sprintf("%s-%d.log", r.name, r.lives))
	r.p = startProc(r.t, r.name, logPath, r.env, r.bin, r.args...)
}

func (r *replica) current() *proc {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.p
}

// tail returns the last n lines of a file, for failure messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%s: %v)", path, err)
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return fmt.Sprintf("--- %s (last %d lines)\n%s", filepath.Base(path), len(lines), bytes.Join(lines, []byte("\n")))
}

// envInt and envDuration read a suite knob, with a default.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(strings.ReplaceAll(v, "_", ""))
	require.NoError(t, err, name)
	return n
}

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	require.NoError(t, err, name)
	return d
}

// sleepCtx sleeps d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// execCombined runs bin to completion and returns stdout and stderr.
func execCombined(ctx context.Context, bin string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = isolatedEnv()
	return cmd.CombinedOutput()
}

// isolatedEnv is this process's environment without IMBI_* and OTEL_*
// variables: every worker flag can be set from IMBI_<FLAG>, and
// scripts/test.sh exports IMBI_NEO4J_* for the Neo4j tests, which would
// give the replicas a credential store (and a missing encryption key).
// The suite passes what the processes need explicitly.
func isolatedEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "IMBI_") || strings.HasPrefix(kv, "OTEL_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}
