package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/cli"
	"github.com/aweber-imbi/imbi-worker/internal/streams"
	"github.com/aweber-imbi/imbi-worker/internal/streams/streamstest"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// toolEnv is an embedded nats-server with the contract's streams and a
// data dir holding its nats.url, as `imbi-worker run` leaves it.
type toolEnv struct {
	url     string
	dataDir string
	js      jetstream.JetStream
	work    jetstream.Stream
	dead    jetstream.Stream
}

func newToolEnv(t *testing.T) *toolEnv {
	t.Helper()
	e := streamstest.Start(t, streams.DefaultConfig())
	dataDir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dataDir, cli.URLFile), []byte(e.URL()+"\n"), 0o600))
	return &toolEnv{url: e.URL(), dataDir: dataDir, js: e.JS, work: e.Provisioned.Stream, dead: e.Provisioned.DLQ}
}

// runTool runs the command line in process with the data dir's URL file.
func (e *toolEnv) runTool(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	cmd := cli.NewRootCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(append(args, "--data-dir", e.dataDir))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := cmd.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

func (e *toolEnv) workMsgs(t *testing.T) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	info, err := e.work.Info(ctx)
	require.NoError(t, err)
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := e.work.GetMsg(ctx, seq)
		if err == nil {
			out = append(out, m)
		}
	}
	return out
}

const toolSpec = `{"delivery_id": "dlv-1", "data": {
  "rule": {"handler": "http#request", "handler_config": {"url": "http://127.0.0.1:9/x"}, "ordinal": 1},
  "context": {"project_id": "p-1", "project_slug": "checkout", "org_slug": "acme"},
  "event": {"type": "push", "third_party_service": "github",
            "metadata": {"webhook_id": "wh-1", "headers": {"authorization": "Bearer leak-me-not"}},
            "payload": {"ref": "refs/heads/main"}}}}`

func TestPublishEventSpecFromStdinStructured(t *testing.T) {
	t.Parallel()
	e := newToolEnv(t)
	out, _, err := e.runTool(t, toolSpec, "publish", "--json")
	require.NoError(t, err)
	var sum map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &sum))
	require.EqualValues(t, 1, sum["acked"])
	require.Equal(t, "imbi.actions.http.request", sum["subject"])

	msgs := e.workMsgs(t)
	require.Len(t, msgs, 1)
	m := msgs[0]
	require.Equal(t, "imbi.actions.http.request", m.Subject)
	require.Equal(t, wire.ContentTypeCE, m.Header.Get(wire.HeaderContentType))
	require.Equal(t, "dlv-1.1", m.Header.Get(wire.HeaderMsgID))
	var ev event.Event
	require.NoError(t, ev.UnmarshalJSON(m.Data))
	require.Equal(t, wire.EventType, ev.Type())
	require.Equal(t, "http#request", ev.Subject())
	require.NotContains(t, string(m.Data), "leak-me-not")

	// The same event again is a duplicate inside the dedup window.
	out, _, err = e.runTool(t, toolSpec, "publish")
	require.NoError(t, err)
	require.Contains(t, out, "duplicates 1")
	require.Len(t, e.workMsgs(t), 1)
}

func TestPublishCountRateBinaryFromFile(t *testing.T) {
	t.Parallel()
	e := newToolEnv(t)
	path := filepath.Join(t.TempDir(), "spec.json")
	require.NoError(t, os.WriteFile(path, []byte(toolSpec), 0o600))
	start := time.Now()
	out, _, err := e.runTool(t, "", "publish", path, "--count", "5", "--rate", "50", "--binary", "--header", "X-Test: yes")
	require.NoError(t, err)
	require.GreaterOrEqual(t, time.Since(start), 4*20*time.Millisecond-5*time.Millisecond, "50/s for 5 messages")
	require.Contains(t, out, "acked 5")
	msgs := e.workMsgs(t)
	require.Len(t, msgs, 5)
	for i, m := range msgs {
		id := "dlv-1.1." + string(rune('1'+i))
		require.Equal(t, id, m.Header.Get(wire.HeaderMsgID))
		require.Equal(t, id, m.Header.Get("ce-id"))
		require.Equal(t, wire.ContentTypeJSON, m.Header.Get(wire.HeaderContentType))
		require.Equal(t, "yes", m.Header.Get("X-Test"))
		require.Contains(t, string(m.Data), `"rule"`)
	}
}

func TestPublishCloudEventAndRaw(t *testing.T) {
	t.Parallel()
	e := newToolEnv(t)
	ce := `{"specversion":"1.0","id":"odd-1","type":"com.example.other","source":"/x","subject":"http#request","data":{}}`
	_, _, err := e.runTool(t, ce, "publish")
	require.NoError(t, err)

	bad := `{"specversion":"1.0","id":"odd-2","type":"t","source":"/x","subject":"Not A Handler"}`
	_, _, err = e.runTool(t, bad, "publish")
	require.ErrorContains(t, err, "--subject")
	_, _, err = e.runTool(t, bad, "publish", "--subject", "imbi.actions.bad.handler")
	require.NoError(t, err)

	_, _, err = e.runTool(t, "\x00 not an event", "publish")
	require.ErrorContains(t, err, "--raw")
	_, _, err = e.runTool(t, "\x00 not an event", "publish", "--raw", "--subject", "imbi.actions.http.request", "--id", "raw-1")
	require.NoError(t, err)

	msgs := e.workMsgs(t)
	require.Len(t, msgs, 3)
	require.Equal(t, "odd-1", msgs[0].Header.Get(wire.HeaderMsgID))
	require.Equal(t, "imbi.actions.bad.handler", msgs[1].Subject)
	require.Equal(t, []byte("\x00 not an event"), msgs[2].Data)
	require.Equal(t, "raw-1", msgs[2].Header.Get(wire.HeaderMsgID))
	require.Empty(t, msgs[2].Header.Get(wire.HeaderContentType))
}

func TestPublishNeedsAURL(t *testing.T) {
	t.Parallel()
	cmd := cli.NewRootCmd()
	cmd.SetIn(strings.NewReader(toolSpec))
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetArgs([]string{"publish", "--data-dir", t.TempDir()})
	err := cmd.ExecuteContext(context.Background())
	require.ErrorContains(t, err, "--nats-url")

	e := newToolEnv(t)
	cmd = cli.NewRootCmd()
	cmd.SetIn(strings.NewReader(toolSpec))
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetArgs([]string{"publish", "--data-dir", t.TempDir(), "--nats-url", e.url})
	require.NoError(t, cmd.ExecuteContext(context.Background()))
}
