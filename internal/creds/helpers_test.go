package creds

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/aweber-imbi/imbi-worker/internal/testenv"
	"github.com/aweber-imbi/imbi-worker/plugins"
)

// fixtures is testdata/creds/fixtures.json, written by gen_fixtures.py with
// Python's Fernet and str().
type fixtures struct {
	Key      string `json:"key"`
	OtherKey string `json:"other_key"`
	Configs  []struct {
		Name        string            `json:"name"`
		Token       string            `json:"token"`
		DecryptOK   bool              `json:"decrypt_ok"`
		Plaintext   *string           `json:"plaintext"`
		Credentials map[string]string `json:"credentials"` // nil: Python crashes (non-object)
		Keys        []string          `json:"keys"`
		StrictError string            `json:"strict_error"`
	} `json:"configs"`
	ClientSecrets []struct {
		Name      string `json:"name"`
		Token     string `json:"token"`
		Plaintext string `json:"plaintext"`
	} `json:"client_secrets"`
}

func loadFixtures(t testing.TB) fixtures {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "creds", "fixtures.json"))
	require.NoError(t, err)
	var f fixtures
	require.NoError(t, json.Unmarshal(raw, &f))
	return f
}

func mustKeyring(t testing.TB, keys ...string) *Keyring {
	t.Helper()
	kr, err := NewKeyring(keys...)
	require.NoError(t, err)
	return kr
}

// neo4jConfig is the Neo4j scripts/neo4j.sh started (scripts/test.sh exports
// its env). Without it the test is skipped on a laptop and FAILS in CI.
func neo4jConfig(t testing.TB) Config {
	t.Helper()
	cfg := ConfigFromEnv(os.Getenv)
	if cfg.URL == "" {
		testenv.Neo4jURL(t)
	}
	return cfg
}

// logBuffer captures slog output from concurrent goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// env is one test's store plus the means to seed and inspect the graph.
type env struct {
	t      testing.TB
	store  *Store
	kr     *Keyring
	logs   *logBuffer
	reader *sdkmetric.ManualReader
	driver neo4j.DriverWithContext
	db     string
}

var constraintOnce sync.Once

// newEnv opens a store on the test Neo4j with a fresh random key (the
// Python fixture's "fresh Fernet key per test"), capturing logs and metrics.
func newEnv(t testing.TB, cipher Cipher, kr *Keyring) *env {
	t.Helper()
	cfg := neo4jConfig(t)
	if kr == nil {
		kr = mustKeyring(t, newKey(t))
	}
	if cipher == nil {
		cipher = kr
	}
	logs := &logBuffer{}
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	store, err := Open(cfg, cipher,
		WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		WithMeterProvider(mp))
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close(context.Background()) })
	e := &env{t: t, store: store, kr: kr, logs: logs, reader: reader, driver: store.driver, db: store.cfg.Database}
	constraintOnce.Do(func() {
		e.exec(`CREATE CONSTRAINT plugin_id IF NOT EXISTS FOR (p:Plugin) REQUIRE p.id IS UNIQUE`, nil)
	})
	return e
}

func newKey(t testing.TB) string {
	t.Helper()
	var k [32]byte
	_, err := rand.Read(k[:])
	require.NoError(t, err)
	return encodeKey(k[:])
}

// newID returns a unique Plugin id so parallel tests never share nodes.
func newID(t testing.TB) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "test-" + hex.EncodeToString(b[:])
}

func (e *env) exec(cypher string, params map[string]any) []*neo4j.Record {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := neo4j.ExecuteQuery(ctx, e.driver, cypher, params, neo4j.EagerResultTransformer,
		neo4j.ExecuteQueryWithDatabase(e.db))
	require.NoError(e.t, err)
	return res.Records
}

// plugin creates a Plugin node whose plugin_configuration is blob (nil:
// property absent).
func (e *env) plugin(id string, blob any) {
	e.t.Helper()
	e.exec(`CREATE (p:Plugin {id: $id, plugin_slug: 'test-plugin'}) SET p.plugin_configuration = $blob`,
		map[string]any{"id": id, "blob": blob})
}

// pluginOf creates a Plugin node of plugin slug, attached to the
// ThirdPartyService service unless service is "".
func (e *env) pluginOf(id, slug, service string, blob any) {
	e.t.Helper()
	e.exec(`CREATE (p:Plugin {id: $id, plugin_slug: $slug}) SET p.plugin_configuration = $blob`,
		map[string]any{"id": id, "slug": slug, "blob": blob})
	if service != "" {
		e.exec(`MATCH (p:Plugin {id: $id}) MERGE (t:ThirdPartyService {slug: $svc}) CREATE (t)-[:HAS_PLUGIN]->(p)`,
			map[string]any{"id": id, "svc": service})
	}
}

// encrypted returns the keyring's token for plaintext.
func (e *env) encrypted(plaintext string) string {
	e.t.Helper()
	tok, err := e.kr.Encrypt(plaintext)
	require.NoError(e.t, err)
	return tok
}

// app links a ServiceApplication with the given properties (nil: absent).
func (e *env) app(pluginID string, clientID, secret any) {
	e.t.Helper()
	e.exec(`MATCH (p:Plugin {id: $id})
CREATE (p)-[:USES_APPLICATION]->(a:ServiceApplication {slug: $id})
SET a.client_id = $cid, a.client_secret = $secret`,
		map[string]any{"id": pluginID, "cid": clientID, "secret": secret})
}

func (e *env) storedBlob(id string) any {
	e.t.Helper()
	recs := e.exec(`MATCH (p:Plugin {id: $id}) RETURN p.plugin_configuration AS b`, map[string]any{"id": id})
	require.Len(e.t, recs, 1)
	v, _ := recs[0].Get("b")
	return v
}

// storedConfig decrypts the stored blob and returns its keys in order and
// the decoded object.
func (e *env) storedConfig(id string) *object {
	e.t.Helper()
	tok, ok := e.storedBlob(id).(string)
	require.True(e.t, ok)
	plain, ok, err := e.kr.Decrypt(tok)
	require.NoError(e.t, err)
	require.True(e.t, ok)
	o, err := decodeObject([]byte(plain))
	require.NoError(e.t, err)
	return o
}

// queries counts Neo4j query attempts the store recorded in its duration
// histogram, by query name ("" = all).
func (e *env) queries(name string) uint64 {
	e.t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(e.t, e.reader.Collect(context.Background(), &rm))
	var n uint64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "imbi_worker.neo4j.query.duration" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Histogram[float64]).DataPoints {
				if q, _ := dp.Attributes.Value("query"); name == "" || q.AsString() == name {
					n += dp.Count
				}
			}
		}
	}
	return n
}

// manifest builds an api_token manifest with the given credential fields;
// a trailing "?" marks an optional field.
func manifest(auth plugins.AuthType, fields ...string) plugins.PluginManifest {
	m := plugins.PluginManifest{Slug: "test-plugin", Name: "Test", PluginType: plugins.TypeWebhook, AuthType: auth, APIVersion: 1}
	for _, f := range fields {
		req := true
		if n := len(f); n > 0 && f[n-1] == '?' {
			f, req = f[:n-1], false
		}
		m.Credentials = append(m.Credentials, plugins.CredentialField{Name: f, Label: f, Required: req})
	}
	return m
}

// raisingCipher is a Cipher whose Decrypt raises, as the Python tests mock
// TokenEncryption.decrypt to raise RuntimeError. Encryption still works.
type raisingCipher struct{ *Keyring }

var errDecryptBoom = errors.New("decrypt boom")

func (raisingCipher) Decrypt(string) (string, bool, error) { return "", false, errDecryptBoom }

// python runs testdata/creds/interop.py with $IMBI_TEST_PYTHON (set by
// scripts/test.sh); skipped on a laptop without it, a failure in CI.
func python(t testing.TB, cmd string, req any) map[string]any {
	t.Helper()
	py := testenv.PythonPath(t)
	in, err := json.Marshal(req)
	require.NoError(t, err)
	c := exec.Command(py, filepath.Join("..", "..", "testdata", "creds", "interop.py"), cmd)
	c.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	c.Stderr = &stderr
	out, err := c.Output()
	require.NoError(t, err, "interop.py %s: %s", cmd, stderr.String())
	var res map[string]any
	require.NoError(t, json.Unmarshal(out, &res))
	return res
}

func (e *env) neo4jParams() map[string]any {
	cfg := e.store.cfg
	return map[string]any{"url": cfg.URL, "user": cfg.User, "password": cfg.Password, "database": cfg.Database}
}
