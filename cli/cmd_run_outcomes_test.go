package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/plugins"
	"github.com/aweber-imbi/imbi-worker/publisher"
	"github.com/aweber-imbi/imbi-worker/wire"
	"github.com/aweber-imbi/imbi-worker/wire/wiredata"
)

// `run` publishes an outcome event per settle decision by default, and
// none with --no-outcomes (the stream is not even provisioned); either
// way the message is settled.
func TestRunOutcomesOnAndOff(t *testing.T) {
	t.Setenv("IMBI_NEO4J_URL", "")
	for _, tc := range []struct {
		name string
		args []string
		want bool
	}{
		{"default", nil, true},
		{"no-outcomes", []string{"--no-outcomes"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var out, errOut syncBuffer
			cmd := NewRootCmd()
			cmd.SetOut(&out)
			cmd.SetErr(&errOut)
			cmd.SetArgs(append([]string{"run", "--data-dir", dir, "--embedded-port", "0", "--shutdown-grace", "2s",
				"--admin-addr", "", "--worker-id", "outcomes-" + tc.name}, tc.args...))
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- cmd.ExecuteContext(ctx) }()
			defer func() { cancel(); require.NoError(t, <-done) }()

			var url string
			require.Eventually(t, func() bool {
				b, err := os.ReadFile(filepath.Join(dir, URLFile))
				url = strings.TrimSpace(string(b))
				return err == nil && url != "" && strings.Contains(errOut.String(), "worker started")
			}, 20*time.Second, 20*time.Millisecond, "never started:\n%s", errOut.String())
			nc, err := nats.Connect(url)
			require.NoError(t, err)
			defer nc.Close()
			js, err := jetstream.New(nc)
			require.NoError(t, err)
			pub, err := publisher.New(nc, publisher.Config{})
			require.NoError(t, err)
			defer pub.Close()
			_, err = pub.Publish(ctx, publisher.Message{ID: "run-outcome.0", Data: wiredata.ActionData{
				Rule:    wire.Rule{Handler: "nope#act", HandlerConfig: json.RawMessage(`{}`)},
				Context: plugins.PluginContext{ProjectID: "p", ProjectSlug: "s", OrgSlug: "o"},
				Event:   plugins.Event{Type: "push", ThirdPartyService: "github", Metadata: plugins.EventMetadata{WebhookID: "wh-1"}},
			}})
			require.NoError(t, err)
			require.Eventually(t, func() bool {
				s, err := js.Stream(ctx, wire.DefaultStream)
				if err != nil {
					return false
				}
				info, err := s.Info(ctx)
				d, derr := js.Stream(ctx, wire.DefaultDLQStream)
				if err != nil || derr != nil {
					return false
				}
				dinfo, err := d.Info(ctx)
				return err == nil && info.State.Msgs == 0 && dinfo.State.Msgs == 1
			}, 15*time.Second, 20*time.Millisecond, "not settled:\n%s", errOut.String())

			s, err := js.Stream(ctx, wire.DefaultOutcomesStream)
			if !tc.want {
				require.ErrorIs(t, err, jetstream.ErrStreamNotFound, "--no-outcomes provisions no outcome stream")
				return
			}
			require.NoError(t, err)
			m, err := s.GetLastMsgForSubject(ctx, wire.DefaultOutcomesPrefix+".nope.act")
			require.NoError(t, err)
			require.Contains(t, string(m.Data), `"id":"run-outcome.0.1"`)
			require.Empty(t, m.Header.Get(wire.HeaderMsgID), "no Nats-Msg-Id (decision 0016)")
			require.Contains(t, string(m.Data), `"worker":"outcomes-default"`)
		})
	}
}
