// Package remote_test runs the worker and Python plugin hosts as real
// processes against a real NATS JetStream server (wire contract §D): the Go
// side builds bin/imbi-worker, the host is `python -m
// imbi_worker_client.host` from IMBI_TEST_PYTHON (scripts/pyenv.sh's venv,
// which installs the client with [host] and examples/python-plugin).
package remote_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/plugins"
	"github.com/aweber-imbi/imbi-worker/publisher"
	"github.com/aweber-imbi/imbi-worker/wire"
	"github.com/aweber-imbi/imbi-worker/wire/wiredata"
)

var (
	buildOnce sync.Once
	workerBin string
	buildErr  error
)

// repoRoot is two levels up from test/remote.
func repoRoot(t *testing.T) string {
	wd, err := os.Getwd()
	require.NoError(t, err)
	return filepath.Clean(filepath.Join(wd, "..", ".."))
}

// python returns IMBI_TEST_PYTHON; without it the test skips, but fails
// when CI=true (CI must run the cross-language tests).
func python(t *testing.T) string {
	t.Helper()
	py := os.Getenv("IMBI_TEST_PYTHON")
	if py == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("IMBI_TEST_PYTHON is not set: CI must run the Python plugin host tests (scripts/test.sh sets it)")
		}
		t.Skip("IMBI_TEST_PYTHON not set; IMBI_TEST_PYTHON=$(scripts/pyenv.sh)")
	}
	out, err := exec.Command(py, "-c", "import imbi_worker_client.host, imbi_example_plugin").CombinedOutput()
	require.NoError(t, err, "%s lacks the host or the example plugin (run scripts/pyenv.sh): %s", py, out)
	return py
}

func worker(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "imbi-remote-test-")
		if err != nil {
			buildErr = err
			return
		}
		workerBin = filepath.Join(dir, "imbi-worker")
		cmd := exec.Command("go", "build", "-o", workerBin, "./cmd/worker")
		cmd.Dir = repoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return workerBin
}

// natsServer is an in-process JetStream server on 127.0.0.1.
func natsServer(t *testing.T) string {
	t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT,
		JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true, MaxPayload: 8 << 20})
	require.NoError(t, err)
	go srv.Start()
	require.True(t, srv.ReadyForConnections(10*time.Second))
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return srv.ClientURL()
}

// proc is a child process with its output in a file.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func start(t *testing.T, name string, env []string, bin string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(logPath)
	require.NoError(t, err)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	require.NoError(t, cmd.Start())
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); _ = f.Close(); close(p.done) }()
	t.Cleanup(func() {
		p.stop(syscall.SIGKILL, 5*time.Second)
		if t.Failed() {
			t.Logf("--- %s log (tail)\n%s", name, tail(p.logText(), 40))
		}
	})
	return p
}

func (p *proc) stop(sig syscall.Signal, wait time.Duration) bool {
	select {
	case <-p.done:
		return true
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return true
	case <-time.After(wait):
		_ = p.cmd.Process.Kill()
		<-p.done
		return false
	}
}

func (p *proc) logText() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

func (p *proc) waitLog(t *testing.T, substr string, d time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool { return strings.Contains(p.logText(), substr) }, d, 50*time.Millisecond,
		"%s never logged %q:\n%s", p.name, substr, tail(p.logText(), 30))
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// workerOpts are the run flags a test changes.
type workerOpts struct {
	args []string
	env  []string
}

func startWorker(t *testing.T, url string, o workerOpts) *proc {
	t.Helper()
	args := []string{"run", "--nats-url", url, "--admin-addr", "", "--log-format", "json",
		"--max-attempts", "3", "--backoff-base", "50ms", "--backoff-max", "200ms",
		"--remote-refresh", "500ms", "--shutdown-grace", "2s"}
	args = append(args, o.args...)
	p := start(t, "worker", o.env, worker(t), args...)
	p.waitLog(t, "worker started", 30*time.Second)
	return p
}

// startHost starts imbi-plugin-host and waits until it answers PING.
func startHost(t *testing.T, nc *nats.Conn, url, name string, env ...string) *proc {
	t.Helper()
	p := start(t, name, env, python(t), "-m", "imbi_worker_client.host", "--nats-url", url,
		"--shutdown-grace", "5")
	p.waitLog(t, "plugin host ready", 30*time.Second)
	require.Positive(t, pingCount(nc), "no host answers $SRV.PING")
	return p
}

// pingCount is how many hosts answer $SRV.PING.imbi-plugin-host.
func pingCount(nc *nats.Conn) int {
	inbox := nats.NewInbox()
	ch := make(chan *nats.Msg, 16)
	sub, err := nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return 0
	}
	defer sub.Unsubscribe()
	if err := nc.PublishRequest("$SRV.PING."+wire.PluginHostService, inbox, nil); err != nil {
		return 0
	}
	n := 0
	timeout := time.After(300 * time.Millisecond)
	for {
		select {
		case <-ch:
			n++
		case <-timeout:
			return n
		}
	}
}

type env struct {
	t   *testing.T
	url string
	nc  *nats.Conn
	js  jetstream.JetStream
}

func newEnv(t *testing.T) *env {
	url := natsServer(t)
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	return &env{t: t, url: url, nc: nc, js: js}
}

// event is a structured action CloudEvent for handler with config.
func event(id, handler string, cfg any, pluginID string) publisher.Message {
	raw, _ := json.Marshal(cfg)
	slug, _, _ := strings.Cut(handler, "#")
	return publisher.Message{ID: id, Data: wiredata.ActionData{
		Rule:               wire.Rule{ID: "r-1", Handler: handler, HandlerConfig: raw},
		Plugin:             &wire.PluginRef{ID: pluginID, Slug: slug},
		Context:            plugins.PluginContext{ProjectID: "p-1", ProjectSlug: "checkout", OrgSlug: "acme"},
		ExternalIdentifier: "acme/checkout",
		Event: plugins.Event{Type: "push", ThirdPartyService: "github",
			Metadata: plugins.EventMetadata{WebhookID: "wh-1", Headers: map[string]string{"x-github-event": "push"}},
			Payload:  map[string]any{"id": id}},
	}}
}

func (e *env) publish(m publisher.Message) { e.publishCtx(context.Background(), m) }

// publishCtx publishes with ctx's span as the event's traceparent.
func (e *env) publishCtx(parent context.Context, m publisher.Message) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(parent, 10*time.Second)
	defer cancel()
	ev, err := publisher.NewEvent(m)
	require.NoError(e.t, err)
	subject, err := publisher.SubjectFor("", ev)
	require.NoError(e.t, err)
	msg, err := publisher.EncodeMsg(ctx, ev, subject, publisher.Structured)
	require.NoError(e.t, err)
	_, err = e.js.PublishMsg(ctx, msg)
	require.NoError(e.t, err)
}

// deadLetter is one DLQ message's headers of interest.
type deadLetter struct {
	Reason, LastReason, Attempts, Error string
}

// deadLetters returns the DLQ by Nats-Msg-Id (the CE id).
func (e *env) deadLetters() map[string]deadLetter {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out := map[string]deadLetter{}
	s, err := e.js.Stream(ctx, wire.DefaultDLQStream)
	if err != nil {
		return out
	}
	info, err := s.Info(ctx)
	if err != nil {
		return out
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		out[m.Header.Get("Nats-Msg-Id")] = deadLetter{
			Reason: m.Header.Get("Imbi-Dlq-Reason"), LastReason: m.Header.Get("Imbi-Dlq-Last-Reason"),
			Attempts: m.Header.Get("Imbi-Dlq-Attempts"), Error: m.Header.Get("Imbi-Dlq-Error"),
		}
	}
	return out
}

// done reports whether the worker wrote the done-marker of id (it acks
// only after that write).
func (e *env) done(id string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	kv, err := e.js.KeyValue(ctx, wire.DefaultDoneBucket)
	if err != nil {
		return false
	}
	_, err = kv.Get(ctx, id)
	return err == nil
}

func (e *env) waitDone(id string, d time.Duration) {
	e.t.Helper()
	require.Eventually(e.t, func() bool { return e.done(id) }, d, 50*time.Millisecond, "%s never completed; DLQ: %v", id, e.deadLetters())
}

func (e *env) waitDead(id string, d time.Duration) deadLetter {
	e.t.Helper()
	var dl deadLetter
	require.Eventually(e.t, func() bool {
		var ok bool
		dl, ok = e.deadLetters()[id]
		return ok
	}, d, 100*time.Millisecond, "%s never dead-lettered", id)
	return dl
}

// records reads the JSON lines an example action appended to path.
func records(t *testing.T, path string) []map[string]any {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m))
		out = append(out, m)
	}
	return out
}
