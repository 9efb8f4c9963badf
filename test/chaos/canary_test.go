package chaos_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/cli"
	"github.com/aweber-imbi/imbi-worker/internal/creds"
	"github.com/aweber-imbi/imbi-worker/internal/dispatch"
	"github.com/aweber-imbi/imbi-worker/plugins"
	"github.com/aweber-imbi/imbi-worker/test/chaos/chaosplugin"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// canarySource hands every plugin the canary as its "token", at the
// dispatch interface.
type canarySource struct{ token string }

func (s canarySource) Credentials(context.Context, plugins.PluginManifest, string, string) (plugins.Credentials, error) {
	return plugins.Credentials{"token": s.token}, nil
}

// countingSource counts credential loads, so the test can prove the secret
// really reached the actions.
type countingSource struct {
	inner dispatch.CredentialSource
	calls atomic.Int64
}

func (s *countingSource) Credentials(ctx context.Context, m plugins.PluginManifest, pluginID, service string) (plugins.Credentials, error) {
	s.calls.Add(1)
	return s.inner.Credentials(ctx, m, pluginID, service)
}

// TestSecretCanary (issue 6 item 4): the plugin credential, an
// authorization header and action error texts all carry a random canary.
// The run covers success, a permanent failure, retries to max_attempts, a
// panic, an invalid config and a message that is not a CloudEvent. Then
// every log line, every dead letter (headers and body), every span (name,
// attributes, events, status), every metric (Prometheus text) and
// `imbi-worker dlq show` of every letter is scanned: the canary must
// appear nowhere. The credential comes once straight from a
// dispatch.CredentialSource and once Fernet-encrypted from the real
// Neo4j store (whose own logs are scanned too).
func TestSecretCanary(t *testing.T) {
	t.Run("credential-source", func(t *testing.T) {
		canary := newCanary(t)
		runCanary(t, canary, canarySource{token: canary}, "pl-"+chaosplugin.CredsSlug, nil)
	})
	t.Run("neo4j-store", func(t *testing.T) {
		neoCfg := sharedNeo4j(t)
		canary := newCanary(t)
		key, err := creds.GenerateKey()
		require.NoError(t, err)
		kr, err := creds.NewKeyring(key)
		require.NoError(t, err)
		storeLogs := &lockedBuffer{}
		store, err := creds.Open(neoCfg, kr, creds.WithLogger(slog.New(slog.NewJSONHandler(storeLogs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
		require.NoError(t, err)
		t.Cleanup(func() { _ = store.Close(context.Background()) })
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		pluginID := fmt.Sprintf("pl-canary-%d", time.Now().UnixNano())
		_, err = neo4j.ExecuteQuery(ctx, neo4jDriver(t, neoCfg),
			`MERGE (p:Plugin {id: $id}) SET p.plugin_slug = $slug MERGE (t:ThirdPartyService {slug: 'github'}) MERGE (t)-[:HAS_PLUGIN]->(p)`,
			map[string]any{"id": pluginID, "slug": chaosplugin.CredsSlug}, neo4j.EagerResultTransformer,
			neo4j.ExecuteQueryWithDatabase(databaseOf(neoCfg)))
		require.NoError(t, err)
		_, err = store.PatchConfiguration(ctx, pluginID, []creds.Update{{Key: "token", Value: canary}})
		require.NoError(t, err)
		resolver, err := creds.NewResolver(store)
		require.NoError(t, err)
		runCanary(t, canary, resolver, pluginID, storeLogs)
	})
}

func runCanary(t *testing.T, canary string, source dispatch.CredentialSource, pluginID string, extraLogs *lockedBuffer) {
	src := &countingSource{inner: source}
	h := newHarness(t, harnessOptions{Credentials: src, MaxAttempts: 3})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	credsHandler := func(action string) string { return chaosplugin.CredsSlug + "#" + action }
	cfg := func(c chaosplugin.RecordConfig) json.RawMessage {
		b, err := json.Marshal(c)
		require.NoError(t, err)
		return b
	}
	type send struct {
		id, handler string
		config      json.RawMessage
		// leakAuth puts the canary, unredacted, into the event's
		// authorization/cookie headers and into a NATS Authorization header:
		// a publisher that forgot to redact.
		leakAuth bool
		// raw replaces the body (not a CloudEvent).
		raw []byte
		// wantReason is the dead-letter reason ("" = must succeed).
		wantReason wire.Reason
	}
	sends := []send{
		{id: "canary.ok", handler: credsHandler(chaosplugin.ActionRecord), config: cfg(chaosplugin.RecordConfig{Label: "ok"})},
		{id: "canary.ok-leaky-publisher", handler: credsHandler(chaosplugin.ActionRecord), config: cfg(chaosplugin.RecordConfig{Label: "ok"}), leakAuth: true},
		{id: "canary.fail", handler: credsHandler(chaosplugin.ActionFail), config: cfg(chaosplugin.RecordConfig{Label: "f", Message: "upstream said 401"}), wantReason: wire.ReasonActionFailed},
		{id: "canary.fail-bearer", handler: credsHandler(chaosplugin.ActionFail), config: cfg(chaosplugin.RecordConfig{Label: "f", Message: "request with Authorization: Bearer {token} failed; retry with token={token}"}), wantReason: wire.ReasonActionFailed},
		{id: "canary.retry", handler: credsHandler(chaosplugin.ActionFail), config: cfg(chaosplugin.RecordConfig{Label: "r", Retryable: true}), wantReason: wire.ReasonMaxAttempts},
		{id: "canary.panic", handler: credsHandler(chaosplugin.ActionPanic), config: cfg(chaosplugin.RecordConfig{Label: "p"}), wantReason: wire.ReasonPanic},
		{id: "canary.invalid-config", handler: credsHandler(chaosplugin.ActionRecord), config: cfg(chaosplugin.RecordConfig{}), leakAuth: true, wantReason: wire.ReasonInvalidConfig},
		{id: "canary.not-a-cloudevent", handler: credsHandler(chaosplugin.ActionRecord), raw: []byte("not a CloudEvent"), wantReason: wire.ReasonInvalidEvent},
	}
	var okIDs []string
	want := map[string]wire.Reason{}
	leakyBodies := map[string]bool{}
	for _, s := range sends {
		msg, err := encodeMessage(ctx, recordMessageFor(s.id, s.handler, s.config, pluginID))
		require.NoError(t, err)
		if s.leakAuth {
			leakyBodies[s.id] = true
			msg.Data = withLeakedAuth(t, msg.Data, canary)
			msg.Header.Set("Authorization", "Bearer "+canary)
		}
		if s.raw != nil {
			msg.Data = s.raw
			msg.Header.Set("Authorization", "Bearer "+canary)
			msg.Header.Set("Cookie", "session="+canary)
		}
		msg.Header.Set(caseHeader, s.id)
		_, err = h.js.PublishMsg(ctx, msg)
		require.NoError(t, err)
		if s.wantReason == "" {
			okIDs = append(okIDs, s.id)
		} else {
			want[s.id] = s.wantReason
		}
	}

	require.Empty(t, h.rec.WaitFor(ctx, okIDs), "successful canary actions never ran")
	letters := h.waitDeadLetters(ctx, len(want))
	h.waitSettled(ctx)
	h.requireRunning()
	require.Len(t, letters, len(want))
	// Positive controls: the secret reached the actions, and the failures
	// carried it into their error texts, which the worker redacted.
	require.Positive(t, src.calls.Load(), "credential source never called")
	for _, dl := range letters {
		id := dl.Header.Get(caseHeader)
		require.Equal(t, string(want[id]), dl.Header.Get(wire.DLQReason), "%s: %s", id, dl.Header.Get(wire.DLQError))
		if id == "canary.fail" || id == "canary.panic" || id == "canary.retry" {
			require.Contains(t, dl.Header.Get(wire.DLQError), wire.Redacted, "%s: error text did not pass through redaction", id)
		}
	}

	require.Contains(t, h.logs.String(), wire.Redacted, "no redacted error text was logged: is the log captured?")

	// Give the batch span processor nothing to hold back: spans are synced.
	require.NoError(t, h.tp.ForceFlush(ctx))
	var leaks []string
	scan := func(where, text string) {
		if strings.Contains(text, canary) {
			leaks = append(leaks, fmt.Sprintf("%s: %s", where, excerpt(text, canary)))
		}
	}
	for i, line := range strings.Split(h.logs.String(), "\n") {
		scan(fmt.Sprintf("log line %d", i+1), line)
	}
	if extraLogs != nil {
		for i, line := range strings.Split(extraLogs.String(), "\n") {
			scan(fmt.Sprintf("credential store log line %d", i+1), line)
		}
	}
	for _, dl := range letters {
		where := fmt.Sprintf("dead letter %s (seq %d)", dl.Header.Get(caseHeader), dl.Seq)
		scan(where+" subject", dl.Subject)
		for k, vs := range dl.Header {
			scan(where+" header "+k, k+": "+strings.Join(vs, ", "))
		}
		if leakyBodies[dl.Header.Get(caseHeader)] {
			// The publisher put the secret in the body itself: the worker
			// redacts those webhook header values and says so (decision
			// 0006), so the scan below must find nothing here either.
			require.Equal(t, "data.event.metadata.headers.authorization,data.event.metadata.headers.cookie",
				dl.Header.Get(wire.DLQRedacted), "%s: leaky body not marked as redacted", where)
		} else if dl.Header.Get(caseHeader) == "canary.fail-bearer" {
			// Its rule's config holds a "Bearer …" string (a template, not
			// the canary): the redactor replaces a Bearer token in any
			// string of the body (internal/redact), and says where.
			require.Equal(t, "data.rule.handler_config.message", dl.Header.Get(wire.DLQRedacted), "%s", where)
		} else {
			require.Empty(t, dl.Header.Get(wire.DLQRedacted), "%s: a clean body marked as redacted", where)
		}
		scan(where+" body", string(dl.Data))
	}
	spans := h.spans.GetSpans()
	require.NotEmpty(t, spans, "no spans recorded")
	for _, s := range spans {
		where := "span " + s.Name
		scan(where+" name", s.Name)
		scan(where+" status", s.Status.Description)
		for _, a := range s.Attributes {
			scan(where+" attribute "+string(a.Key), a.Value.Emit())
		}
		for _, e := range s.Events {
			scan(where+" event "+e.Name, e.Name)
			for _, a := range e.Attributes {
				scan(where+" event attribute "+string(a.Key), a.Value.Emit())
			}
		}
	}
	metrics := h.metricsText()
	require.Contains(t, metrics, "imbi_worker_dead_letters", "metrics not exported")
	scan("metrics", metrics)
	for _, dl := range letters {
		for _, asJSON := range []bool{false, true} {
			out, err := dlqShow(ctx, h.srv.URL(), dl.Seq, asJSON)
			require.NoError(t, err, "dlq show %d", dl.Seq)
			require.Contains(t, out, dl.Header.Get(wire.DLQReason), "dlq show %d printed no reason: is its output captured?", dl.Seq)
			scan(fmt.Sprintf("dlq show %d (json=%v)", dl.Seq, asJSON), out)
		}
	}

	t.Logf("FIGURES canary: %d log lines, %d dead letters, %d spans, %d metric bytes scanned; %d hits",
		strings.Count(h.logs.String(), "\n"), len(letters), len(spans), len(metrics), len(leaks))
	require.Empty(t, leaks, "the canary leaked")
}

func newCanary(t *testing.T) string {
	t.Helper()
	b := make([]byte, 12)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return "CANARY" + hex.EncodeToString(b)
}

// withLeakedAuth rewrites a structured event so its webhook headers carry
// the secret unredacted, as a publisher that forgot to redact would send.
func withLeakedAuth(t *testing.T, body []byte, secret string) []byte {
	t.Helper()
	var ev map[string]any
	require.NoError(t, json.Unmarshal(body, &ev))
	md := ev["data"].(map[string]any)["event"].(map[string]any)["metadata"].(map[string]any)
	md["headers"] = map[string]any{
		"x-github-event": "push",
		"authorization":  "Bearer " + secret,
		"cookie":         "session=" + secret,
	}
	out, err := json.Marshal(ev)
	require.NoError(t, err)
	return out
}

// excerpt shows the canary in context without flooding the output.
func excerpt(text, canary string) string {
	i := strings.Index(text, canary)
	lo, hi := max(i-80, 0), min(i+len(canary)+40, len(text))
	return strings.ReplaceAll(text[lo:hi], canary, "<CANARY>")
}

// dlqShow runs `imbi-worker dlq show` in process and returns its output.
func dlqShow(ctx context.Context, url string, seq uint64, asJSON bool) (string, error) {
	cmd := cli.NewRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	args := []string{"dlq", "show", "--nats-url", url, "--seq", fmt.Sprint(seq)}
	if asJSON {
		args = append(args, "--json")
	}
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	return out.String(), err
}
