package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/streams"
	"github.com/aweber-imbi/imbi-worker/publisher"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// syncBuffer is a bytes.Buffer safe to read while the command writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runCmd is an `imbi-worker run` started by startRun.
type runCmd struct {
	out, errOut syncBuffer
	// stop cancels the command and returns its exit error (t.Cleanup
	// calls it too).
	stop func() error
}

// errRunDidNotExit: the command did not exit within 20 s of its cancel.
var errRunDidNotExit = errors.New("run did not exit")

// startRun starts `imbi-worker args...` and waits until the worker has
// started. An empty --data-dir value is given a temporary directory.
func startRun(t *testing.T, args ...string) *runCmd {
	t.Helper()
	args = slices.Clone(args)
	for i := range args {
		if args[i] == "--data-dir" && i+1 < len(args) && args[i+1] == "" {
			args[i+1] = t.TempDir()
		}
	}
	r := &runCmd{}
	cmd := NewRootCmd()
	cmd.SetOut(&r.out)
	cmd.SetErr(&r.errOut)
	cmd.SetArgs(args)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	var once sync.Once
	var exitErr error
	r.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case exitErr = <-done:
			case <-time.After(20 * time.Second):
				exitErr = errRunDidNotExit
			}
		})
		return exitErr
	}
	t.Cleanup(func() {
		if errors.Is(r.stop(), errRunDidNotExit) {
			t.Error(errRunDidNotExit)
		}
	})
	require.Eventually(t, func() bool {
		select {
		case err := <-done:
			done <- err
			return true
		default:
			return strings.Contains(r.errOut.String(), "worker started")
		}
	}, 20*time.Second, 20*time.Millisecond)
	require.Contains(t, r.errOut.String(), "worker started", "the worker did not start:\n%s", r.errOut.String())
	return r
}

// embeddedURL waits up to timeout for `run` to write its embedded
// server's URL under dir and returns it.
func embeddedURL(t *testing.T, dir string, timeout time.Duration) string {
	t.Helper()
	var url string
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(filepath.Join(dir, URLFile))
		url = strings.TrimSpace(string(b))
		return err == nil && url != ""
	}, timeout, 20*time.Millisecond)
	return url
}

// connectPublisher connects to url and returns the connection and a
// publisher with the default subjects; both close when the test ends.
func connectPublisher(t *testing.T, url string) (*nats.Conn, *publisher.Publisher) {
	t.Helper()
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	pub, err := publisher.New(nc, publisher.Config{})
	require.NoError(t, err)
	t.Cleanup(pub.Close)
	return nc, pub
}

// TestRunEmbeddedEndToEnd: `imbi-worker run` with no URL starts the
// embedded server, writes its URL, provisions, dead-letters a message for
// an unknown handler and exits 0 on cancellation.
func TestRunEmbeddedEndToEnd(t *testing.T) {
	dir := t.TempDir()
	var out, errOut syncBuffer
	cmd := NewRootCmd()
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs([]string{"run", "--data-dir", dir, "--embedded-port", "0", "--shutdown-grace", "2s", "--log-format", "text"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()

	url := embeddedURL(t, dir, 15*time.Second)
	require.Contains(t, out.String(), url)

	nc, err := nats.Connect(url)
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	dlq := make(chan *nats.Msg, 1)
	sub, err := nc.ChanSubscribe("imbi.dlq.actions.>", dlq)
	require.NoError(t, err)
	defer func() { _ = sub.Unsubscribe() }()
	require.Eventually(t, func() bool { return strings.Contains(errOut.String(), "worker started") }, 15*time.Second, 20*time.Millisecond)

	m := nats.NewMsg("imbi.actions.nope.act")
	m.Header.Set("Content-Type", wire.ContentTypeCE)
	m.Data = []byte(`{"specversion":"1.0","id":"cli-1","source":"/s","type":"io.imbi.webhook.action.v1","data":{"rule":{"handler":"nope#act"},"context":{"project_id":"p","project_slug":"s","org_slug":"o"},"event":{}}}`)
	_, err = js.PublishMsg(context.Background(), m)
	require.NoError(t, err)
	select {
	case dl := <-dlq:
		require.Equal(t, string(wire.ReasonUnknownHandler), dl.Header.Get(wire.DLQReason))
	case <-time.After(15 * time.Second):
		t.Fatalf("no dead letter; log:\n%s", errOut.String())
	}

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("run did not exit")
	}
	require.NoFileExists(t, filepath.Join(dir, URLFile))
}

func TestRunRejectsUnsafeLimits(t *testing.T) {
	cmd := NewRootCmd()
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	cmd.SetArgs([]string{"run", "--data-dir", t.TempDir(), "--max-attempts", "10", "--max-deliver", "10"})
	err := cmd.ExecuteContext(context.Background())
	require.ErrorContains(t, err, "MaxDeliver")
}

func TestPluginTimeoutSecondsEnv(t *testing.T) {
	t.Setenv("IMBI_PLUGIN_TIMEOUT_SECONDS", "2.5")
	cmd := newRunCmd()
	var f runFlags
	f.pluginTimeout = 10 * time.Second
	d, err := pluginTimeout(cmd, &f)
	require.NoError(t, err)
	require.Equal(t, 2500*time.Millisecond, d)
	require.NoError(t, cmd.Flags().Set("plugin-timeout", "3s"))
	f.pluginTimeout = 3 * time.Second
	d, err = pluginTimeout(cmd, &f)
	require.NoError(t, err)
	require.Equal(t, 3*time.Second, d, "the flag wins")
	t.Setenv("IMBI_PLUGIN_TIMEOUT_SECONDS", "soon")
	_, err = pluginTimeout(newRunCmd(), &f)
	require.Error(t, err)
}

// TestStreamsApplyIdempotent: applying twice changes nothing and the
// objects match the contract.
func TestStreamsApplyIdempotent(t *testing.T) {
	srv, err := streams.StartEmbedded(streams.EmbeddedConfig{DataDir: t.TempDir()})
	require.NoError(t, err)
	defer srv.Shutdown()
	for range 2 {
		var out bytes.Buffer
		cmd := NewRootCmd()
		cmd.SetOut(&out)
		cmd.SetArgs([]string{"streams", "apply", "--nats-url", srv.URL()})
		require.NoError(t, cmd.ExecuteContext(context.Background()))
		require.Contains(t, out.String(), "IMBI_ACTIONS")
		require.Contains(t, out.String(), "outcomes     IMBI_OUTCOMES  subjects [imbi.outcomes.>]  max age 168h0m0s")
		require.Contains(t, out.String(), "lanes        imbi_lanes")
	}
	nc, err := nats.Connect(srv.URL())
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := context.Background()
	s, err := js.Stream(ctx, "IMBI_ACTIONS")
	require.NoError(t, err)
	si, err := s.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, jetstream.WorkQueuePolicy, si.Config.Retention)
	require.Equal(t, jetstream.FileStorage, si.Config.Storage)
	require.Equal(t, 2*time.Minute, si.Config.Duplicates)
	d, err := js.Stream(ctx, "IMBI_ACTIONS_DLQ")
	require.NoError(t, err)
	di, err := d.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, 14*24*time.Hour, di.Config.MaxAge)
	o, err := js.Stream(ctx, "IMBI_OUTCOMES")
	require.NoError(t, err)
	oi, err := o.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, jetstream.LimitsPolicy, oi.Config.Retention)
	require.Equal(t, 7*24*time.Hour, oi.Config.MaxAge)

	// --no-outcomes --outcomes-stream X: nothing provisioned under X.
	var out bytes.Buffer
	cmd := NewRootCmd()
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"streams", "apply", "--nats-url", srv.URL(), "--no-outcomes", "--outcomes-stream", "OFF_OUTCOMES", "--outcomes-prefix", "off.outcomes"})
	require.NoError(t, cmd.ExecuteContext(context.Background()))
	require.NotContains(t, out.String(), "outcomes ")
	_, err = js.Stream(ctx, "OFF_OUTCOMES")
	require.ErrorIs(t, err, jetstream.ErrStreamNotFound)
	c, err := js.Consumer(ctx, "IMBI_ACTIONS", "imbi-worker")
	require.NoError(t, err)
	ci, err := c.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, jetstream.AckExplicitPolicy, ci.Config.AckPolicy)
	require.Equal(t, 30*time.Second, ci.Config.AckWait)
	require.Equal(t, -1, ci.Config.MaxDeliver, "no server cap: deferrals are deliveries (decision 0010)")
	kv, err := js.KeyValue(ctx, "imbi_actions_done")
	require.NoError(t, err)
	st, err := kv.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, 24*time.Hour, st.TTL())
}
