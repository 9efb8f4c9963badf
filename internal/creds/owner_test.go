package creds

// plugin.id comes from event data, so the store checks in its query that
// the Plugin node belongs to the handler's plugin (its plugin_slug, and its
// ThirdPartyService when the event names one) before any secret is read.

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/dispatch"
	"github.com/aweber-imbi/imbi-worker/internal/dispatch/dispatchtest"
	"github.com/aweber-imbi/imbi-worker/internal/streams"
	"github.com/aweber-imbi/imbi-worker/internal/streams/streamstest"
	"github.com/aweber-imbi/imbi-worker/internal/streams/workertest"
	"github.com/aweber-imbi/imbi-worker/internal/worker"
	"github.com/aweber-imbi/imbi-worker/plugins"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// countingCipher counts Decrypt calls: zero means no stored secret reached
// the worker's memory in plaintext.
type countingCipher struct {
	*Keyring
	decrypts atomic.Int64
}

func (c *countingCipher) Decrypt(tok string) (string, bool, error) {
	c.decrypts.Add(1)
	return c.Keyring.Decrypt(tok)
}

func TestPluginCredentialsBelongToTheHandlersPlugin(t *testing.T) {
	t.Parallel()
	const canary = "CANARY-owner-7f3e"
	for _, c := range []struct {
		name     string
		auth     plugins.AuthType
		nodeSlug string // "" : the node has no plugin_slug
		nodeSvc  string // service the node is attached to ("" : none)
		eventSvc string // the event's third_party_service
		owned    bool
	}{
		{"api_token, same slug, no service", plugins.AuthAPIToken, "test-plugin", "", "", true},
		{"api_token, same slug and service", plugins.AuthAPIToken, "test-plugin", "svc-a", "svc-a", true},
		{"api_token, another plugin's node", plugins.AuthAPIToken, "other-plugin", "", "", false},
		{"api_token, another plugin's node of the same service", plugins.AuthAPIToken, "other-plugin", "svc-a", "svc-a", false},
		{"api_token, node of another service", plugins.AuthAPIToken, "test-plugin", "svc-a", "svc-b", false},
		{"api_token, node of no service, event names one", plugins.AuthAPIToken, "test-plugin", "", "svc-a", false},
		{"api_token, node without plugin_slug", plugins.AuthAPIToken, "", "", "", false},
		{"aws-iam-ic, another plugin's node", plugins.AuthAWSIAMIC, "other-plugin", "", "", false},
		{"oauth2, same slug and service", plugins.AuthOAuth2, "test-plugin", "svc-a", "svc-a", true},
		{"oauth2, another plugin's node", plugins.AuthOAuth2, "other-plugin", "", "", false},
		{"oidc, node of another service", plugins.AuthOIDC, "test-plugin", "svc-a", "svc-b", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			kr := mustKeyring(t, newKey(t))
			cc := &countingCipher{Keyring: kr}
			e, id := newEnv(t, cc, kr), newID(t)
			// Unique service names: parallel tests share the Neo4j.
			svc := func(s string) string {
				if s == "" {
					return ""
				}
				return s + "-" + id
			}
			e.exec(`CREATE (p:Plugin {id: $id}) SET p.plugin_slug = $slug, p.plugin_configuration = $blob`,
				map[string]any{"id": id, "slug": nilIfEmpty(c.nodeSlug), "blob": e.encrypted(`{"token": "` + canary + `"}`)})
			if c.nodeSvc != "" {
				e.exec(`MATCH (p:Plugin {id: $id}) CREATE (:ThirdPartyService {slug: $svc})-[:HAS_PLUGIN]->(p)`,
					map[string]any{"id": id, "svc": svc(c.nodeSvc)})
			}
			e.app(id, "client-"+id, e.encrypted(canary))

			got, err := e.store.ServicePluginCredentials(context.Background(), svc(c.eventSvc), id, manifest(c.auth, "token"))
			if c.owned {
				require.NoError(t, err)
				require.Contains(t, []string{got["token"], got["client_secret"]}, canary)
				return
			}
			require.Nil(t, got)
			var missing *plugins.PluginCredentialsMissing
			require.ErrorAs(t, err, &missing, "a mismatch is credentials_missing (permanent)")
			var owner *PluginOwnerError
			require.ErrorAs(t, err, &owner)
			require.Equal(t, PluginOwnerError{PluginID: id, Slug: "test-plugin", Service: svc(c.eventSvc)}, *owner)
			require.Contains(t, err.Error(), `Plugin node "`+id+`" does not belong to plugin 'test-plugin'`)
			if c.eventSvc != "" {
				require.Contains(t, err.Error(), "of third-party service '"+svc(c.eventSvc)+"'")
			}
			require.NotContains(t, err.Error(), canary)
			require.Zero(t, cc.decrypts.Load(), "the other plugin's secret was never decrypted")
			require.NotContains(t, e.logs.String(), canary)
		})
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// A success cached for one service must not answer an event that names
// another service for the same plugin.id.
func TestResolverCacheKeyIncludesService(t *testing.T) {
	t.Parallel()
	e, r, _ := newResolverEnv(t)
	id := newID(t)
	svc := "svc-" + id
	e.pluginOf(id, "test-plugin", svc, e.encrypted(`{"token": "v"}`))
	m := manifest(plugins.AuthAPIToken, "token")
	got, err := r.Resolve(context.Background(), Request{PluginID: id, ThirdPartyService: svc, Manifest: m})
	require.NoError(t, err)
	require.Equal(t, "v", got["token"])
	_, err = r.Resolve(context.Background(), Request{PluginID: id, ThirdPartyService: "other-" + svc, Manifest: m})
	var owner *PluginOwnerError
	require.ErrorAs(t, err, &owner)
	require.ErrorIs(t, err, plugins.ErrCredentialsMissing)
}

// Through the worker: an event for handler withcreds#ok that names the
// Plugin node of another plugin is dead-lettered as credentials_missing at
// once, the action never runs and the other plugin's token is never
// decrypted, logged or dead-lettered.
func TestEndToEndForgedPluginIDIsCredentialsMissing(t *testing.T) {
	t.Parallel()
	const canary = "CANARY-forged-9b21"
	kr := mustKeyring(t, newKey(t))
	cc := &countingCipher{Keyring: kr}
	base := newEnv(t, cc, kr)
	victim := newID(t)
	base.pluginOf(victim, "victim-plugin", "github", base.encrypted(`{"token": "`+canary+`"}`))
	resolver, err := NewResolver(base.store)
	require.NoError(t, err)

	ne := streamstest.Start(t, streams.Config{MaxDeliver: 10, Idempotency: true})
	dead := workertest.RecordDeadLetters(t, ne)

	rec := dispatchtest.NewRecorder()
	reg, err := dispatchtest.Registry(&dispatchtest.Plugin{Slug: "withcreds", Rec: rec,
		Credentials: []plugins.CredentialField{{Name: "token", Label: "Token", Required: true}}})
	require.NoError(t, err)
	workerLogs := &logBuffer{}
	workertest.Run(t, ne, &dispatch.Dispatcher{Registry: reg, Credentials: resolver, DefaultTimeout: 2 * time.Second},
		worker.Config{Concurrency: 1, MaxAttempts: 5, BackoffBase: 50 * time.Millisecond,
			BackoffMax: 100 * time.Millisecond, ShutdownGrace: 5 * time.Second, Idempotency: true, WorkerID: "owner-e2e",
			Logger: slog.New(slog.NewTextHandler(workerLogs, nil))})

	m := nats.NewMsg(wire.DefaultSubjectPrefix + ".withcreds.ok")
	m.Header.Set("Content-Type", wire.ContentTypeCE)
	m.Header.Set(wire.HeaderMsgID, "msg-forged")
	m.Data = actionEvent("msg-forged", victim)
	_, err = ne.JS.PublishMsg(context.Background(), m)
	require.NoError(t, err)

	require.Eventually(t, func() bool { return len(dead.All()) == 1 }, 15*time.Second, 10*time.Millisecond)
	letter := dead.All()[0]
	require.Equal(t, string(wire.ReasonCredentialsMissing), letter.Header.Get(wire.DLQReason))
	require.Equal(t, "1", letter.Header.Get(wire.DLQAttempts), "permanent: not retried")
	require.Contains(t, letter.Header.Get(wire.DLQError), `Plugin node "`+victim+`" does not belong to plugin 'withcreds'`)
	require.Zero(t, rec.Calls("msg-forged"), "the action never ran")
	require.Zero(t, cc.decrypts.Load(), "the victim's token was never decrypted")
	raw, err := json.Marshal(letter.Header)
	require.NoError(t, err)
	require.NotContains(t, string(raw)+string(letter.Data)+workerLogs.String()+base.logs.String(), canary)
}
