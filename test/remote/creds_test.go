package remote_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/aweber-imbi/imbi-worker/internal/creds"
)

func neo4jConfig(t *testing.T) creds.Config {
	t.Helper()
	cfg := creds.ConfigFromEnv(os.Getenv)
	if cfg.URL == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set: CI must run the remote credentials test (scripts/test.sh starts Neo4j)", creds.EnvNeo4jURL)
		}
		t.Skipf("%s not set; run `scripts/neo4j.sh start && eval \"$(scripts/neo4j.sh env)\"`", creds.EnvNeo4jURL)
	}
	return cfg
}

// Credentials go from Neo4j (Fernet at rest) through the worker, as a
// Fernet token under the worker's current key, to the Python host; the
// action sees the value, and nothing on imbi.plugins.> (requests) or on
// any inbox (replies) carries it in clear, nor do the logs.
func TestRemoteCredentialsRoundTrip(t *testing.T) {
	python(t)
	cfg := neo4jConfig(t)
	key, err := creds.GenerateKey()
	require.NoError(t, err)
	kr, err := creds.NewKeyring(key)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	buf := make([]byte, 12)
	_, _ = rand.Read(buf)
	canary := "canary-" + hex.EncodeToString(buf)
	pluginID := fmt.Sprintf("pl-remote-%d", time.Now().UnixNano())
	drv, err := neo4j.NewDriverWithContext(cfg.URL, neo4j.BasicAuth(cfg.User, cfg.Password, ""))
	require.NoError(t, err)
	defer drv.Close(ctx)
	db := cfg.Database
	if db == "" {
		db = "neo4j"
	}
	_, err = neo4j.ExecuteQuery(ctx, drv, `MERGE (p:Plugin {id: $id}) SET p.plugin_slug = $slug MERGE (t:ThirdPartyService {slug: 'github'}) MERGE (t)-[:HAS_PLUGIN]->(p)`,
		map[string]any{"id": pluginID, "slug": "example-py-secure"}, neo4j.EagerResultTransformer,
		neo4j.ExecuteQueryWithDatabase(db))
	require.NoError(t, err)
	store, err := creds.Open(cfg, kr)
	require.NoError(t, err)
	defer store.Close(ctx)
	_, err = store.PatchConfiguration(ctx, pluginID, []creds.Update{{Key: "api_token", Value: canary}})
	require.NoError(t, err)

	e := newEnv(t)
	var mu sync.Mutex
	var seen []string
	for _, subj := range []string{"imbi.plugins.>", "_INBOX.>"} {
		sub, err := e.nc.Subscribe(subj, func(m *nats.Msg) {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, m.Subject+" "+string(m.Data)+fmt.Sprint(m.Header))
		})
		require.NoError(t, err)
		defer sub.Unsubscribe()
	}
	keyEnv := creds.EnvEncryptionKey + "=" + key
	w := startWorker(t, e.url, workerOpts{env: []string{keyEnv}, args: []string{"--neo4j-url", cfg.URL, "--neo4j-database", db}})
	// (user and password reach the worker as IMBI_NEO4J_* from this environment)
	h := startHost(t, e.nc, e.url, "host", keyEnv)
	w.waitLog(t, "remote plugin catalog loaded", 10*time.Second)

	rec := filepath.Join(t.TempDir(), "token.jsonl")
	traceID := trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID,
		SpanID: trace.SpanID{0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}, TraceFlags: trace.FlagsSampled})
	e.publishCtx(trace.ContextWithSpanContext(context.Background(), sc),
		event("cred-1", "example-py-secure#use_token", map[string]any{"record_to": rec}, pluginID))
	e.waitDone("cred-1", 20*time.Second)
	recs := records(t, rec)
	require.Len(t, recs, 1)
	require.Equal(t, canary, recs[0]["api_token"], "the action saw the decrypted credential")

	mu.Lock()
	defer mu.Unlock()
	var sawRun bool
	for _, s := range seen {
		require.NotContains(t, s, canary)
		if strings.HasPrefix(s, "imbi.plugins.v1.run.example-py-secure.use_token") {
			sawRun = true
			require.Contains(t, s, "traceparent:[00-"+traceID.String(), "the run request carries the trace")
		}
	}
	require.True(t, sawRun, "the sniffer saw the run request")
	require.NotContains(t, w.logText(), canary)
	require.NotContains(t, h.logText(), canary)
}
