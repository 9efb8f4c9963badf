package creds

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/aweber-imbi/imbi-worker/plugins"
)

// Python-made tokens stored in Neo4j, read by the Go store: every fixture
// through the lenient reader (credentials), the strict reader (patch) and
// keys.
func TestInteropPythonFixturesThroughNeo4j(t *testing.T) {
	t.Parallel()
	fx := loadFixtures(t)
	kr := mustKeyring(t, fx.Key)
	e := newEnv(t, nil, kr)
	ctx := context.Background()
	for _, c := range fx.Configs {
		t.Run(c.Name, func(t *testing.T) {
			id := newID(t)
			e.plugin(id, c.Token)

			got, err := e.store.PluginCredentials(ctx, id, manifest(plugins.AuthAPIToken))
			require.NoError(t, err)
			want := c.Credentials
			if want == nil { // Python crashes on a non-object; Go reads {} (documented deviation)
				want = map[string]string{}
			}
			require.Equal(t, plugins.Credentials(want), got)

			keys, err := e.store.ConfigurationKeys(ctx, id)
			require.NoError(t, err)
			if c.StrictError != "" {
				require.Empty(t, keys)
			} else {
				require.Equal(t, c.Keys, keys)
			}

			_, err = e.store.PatchConfiguration(ctx, id, []Update{{"added", "v"}})
			if c.StrictError != "" {
				requireConfigError(t, err, id, c.StrictError)
				require.Equal(t, c.Token, e.storedBlob(id), "nothing overwritten")
				return
			}
			require.NoError(t, err)
			stored := e.storedConfig(id)
			require.Equal(t, append(append([]string{}, keysOf(t, kr, c.Token)...), "added"), stored.keys,
				"patch keeps Python's key order and appends")
		})
	}
	for _, s := range fx.ClientSecrets {
		t.Run("client_secret_"+s.Name, func(t *testing.T) {
			id := newID(t)
			e.plugin(id, nil)
			e.app(id, "client-"+s.Name, s.Token)
			got, err := e.store.PluginCredentials(ctx, id, manifest(plugins.AuthOIDC))
			if s.Plaintext == "" {
				requireMissing(t, err, noSecret)
				return
			}
			require.NoError(t, err)
			require.Equal(t, plugins.Credentials{"client_id": "client-" + s.Name, "client_secret": s.Plaintext}, got)
		})
	}
}

func keysOf(t *testing.T, kr *Keyring, tok string) []string {
	t.Helper()
	plain, ok, err := kr.Decrypt(tok)
	require.NoError(t, err)
	require.True(t, ok)
	o, err := decodeObject([]byte(plain))
	require.NoError(t, err)
	return o.keys
}

// Python (cryptography + the neo4j driver) writes a Plugin and its
// ServiceApplication; Go reads both paths.
func TestInteropPythonWritesGoReads(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	e := newEnv(t, nil, mustKeyring(t, key))
	id := newID(t)
	config := map[string]any{
		"token": "py-tøken-✓", "port": 8443, "ratio": 0.25, "enabled": true,
		"scopes": []any{"read", "write"}, "nested": map[string]any{"k": "v"}, "gone": nil, "ключ": "значение",
	}
	res := python(t, "write", map[string]any{
		"neo4j": e.neo4jParams(), "key": key, "plugin_id": id, "plugin_slug": "test-plugin", "config": config,
		"client_id": "py-client", "client_secret": "py-sëcret",
	})
	want := plugins.Credentials{}
	for k, v := range res["credentials"].(map[string]any) {
		want[k] = v.(string)
	}
	got, err := e.store.PluginCredentials(context.Background(), id, manifest(plugins.AuthAPIToken, "token", "port"))
	require.NoError(t, err)
	require.Equal(t, want, got, "Go's str() of every value equals Python's")
	require.Equal(t, "True", got["enabled"])
	require.Equal(t, "['read', 'write']", got["scopes"])

	app, err := e.store.PluginCredentials(context.Background(), id, manifest(plugins.AuthOAuth2))
	require.NoError(t, err)
	require.Equal(t, plugins.Credentials{"client_id": "py-client", "client_secret": "py-sëcret"}, app)
}

// Go patches (encrypting with fernet-go); Python reads the blob from Neo4j
// and decrypts it with cryptography's Fernet.
func TestInteropGoPatchReadByPython(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	e := newEnv(t, nil, mustKeyring(t, key))
	id := newID(t)
	e.plugin(id, e.encrypted(`{"keep": "k", "drop": "d", "replace": "old"}`))
	keys, err := e.store.PatchConfiguration(context.Background(), id, []Update{
		{"replace", "new-✓"}, {"drop", ""}, {"added", "日本語 \"quoted\" \\ back"},
	})
	require.NoError(t, err)
	require.Equal(t, []string{"keep", "replace", "added"}, keys)

	res := python(t, "read", map[string]any{"neo4j": e.neo4jParams(), "key": key, "plugin_id": id})
	require.Nil(t, res["error"])
	require.Equal(t, map[string]any{"keep": "k", "replace": "new-✓", "added": "日本語 \"quoted\" \\ back"}, res["config"])
	require.Equal(t, []any{"keep", "replace", "added"}, res["keys"], "Python sees Go's key order")
}

// A canary secret must never reach an error text or a log record, on any
// failure path.
func TestCanarySecretNeverInErrorsOrLogs(t *testing.T) {
	t.Parallel()
	const canary = "CANARY-7f3a9-do-not-leak"
	kr := mustKeyring(t, newKey(t))
	e := newEnv(t, nil, kr)
	boom := newEnv(t, raisingCipher{kr}, kr)
	ctx := context.Background()
	var errs []error
	collect := func(_ any, err error) { errs = append(errs, err) }

	// Blob with the canary but a required field missing.
	id1 := newID(t)
	e.plugin(id1, e.encrypted(fmt.Sprintf(`{"other": %q}`, canary)))
	collect(e.store.PluginCredentials(ctx, id1, manifest(plugins.AuthAPIToken, "token")))
	// Not JSON, containing the canary.
	id2 := newID(t)
	e.plugin(id2, e.encrypted("not json "+canary))
	collect(e.store.PluginCredentials(ctx, id2, manifest(plugins.AuthAPIToken, "token")))
	collect(e.store.PatchConfiguration(ctx, id2, []Update{{"token", canary}}))
	collect(e.store.ConfigurationKeys(ctx, id2))
	// JSON that is not an object.
	id3 := newID(t)
	e.plugin(id3, e.encrypted(fmt.Sprintf(`[%q]`, canary)))
	collect(e.store.PluginCredentials(ctx, id3, manifest(plugins.AuthAPIToken, "token")))
	collect(e.store.PatchConfiguration(ctx, id3, []Update{{"token", canary}}))
	// Decrypt raising, on both paths.
	id4 := newID(t)
	e.plugin(id4, e.encrypted(fmt.Sprintf(`{"token": %q}`, canary)))
	e.app(id4, "cid", e.encrypted(canary))
	collect(boom.store.PluginCredentials(ctx, id4, manifest(plugins.AuthAPIToken, "token")))
	collect(boom.store.PluginCredentials(ctx, id4, manifest(plugins.AuthOAuth2)))
	collect(boom.store.PatchConfiguration(ctx, id4, []Update{{"x", canary}}))
	// Successful reads return the canary, and log nothing about it.
	got, err := e.store.PluginCredentials(ctx, id4, manifest(plugins.AuthAPIToken, "token"))
	require.NoError(t, err)
	require.Equal(t, canary, got["token"])
	require.NotContains(t, fmt.Sprintf("%v %+v %s", got, got, got), canary, "Credentials redact themselves")

	failures := 0
	for _, err := range errs {
		if err == nil {
			continue
		}
		failures++
		require.NotContains(t, err.Error(), canary)
		for u := errors.Unwrap(err); u != nil; u = errors.Unwrap(u) {
			require.NotContains(t, u.Error(), canary)
		}
	}
	require.GreaterOrEqual(t, failures, 7)
	for _, logs := range []string{e.logs.String(), boom.logs.String()} {
		require.NotContains(t, logs, canary)
	}
	require.Contains(t, e.logs.String()+boom.logs.String(), "level=WARN", "the failure paths did log")
}

// Neo4j not answering: the store retries briefly, then the resolver reports
// PluginUnavailableError (retryable at message level), never missing
// credentials. 127.0.0.1:1 refuses connections.
func TestUnavailableNeo4jIsRetryable(t *testing.T) {
	t.Parallel()
	cfg := Config{URL: "bolt://127.0.0.1:1", Password: "wrong-but-unused", Retries: 2, RetryBase: 10 * time.Millisecond, QueryTimeout: 2 * time.Second}
	reader := sdkmetric.NewManualReader()
	store, err := Open(cfg, mustKeyring(t, newKey(t)), WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
	require.NoError(t, err)
	defer store.Close(context.Background())
	r, err := NewResolver(store)
	require.NoError(t, err)

	start := time.Now()
	_, err = r.Resolve(context.Background(), Request{PluginID: "p1", Manifest: manifest(plugins.AuthAPIToken, "token")})
	var unavailable *plugins.PluginUnavailableError
	require.ErrorAs(t, err, &unavailable)
	require.False(t, errors.Is(err, plugins.ErrCredentialsMissing))
	require.Less(t, time.Since(start), 10*time.Second, "retries are brief")
	require.NotContains(t, err.Error(), "wrong-but-unused")
	e := &env{t: t, reader: reader}
	require.EqualValues(t, 3, e.queries("read_configuration"), "connection refused is transient: 1 try + 2 retries")

	_, err = r.Resolve(context.Background(), Request{ThirdPartyService: "github", Manifest: manifest(plugins.AuthAPIToken, "token")})
	require.ErrorAs(t, err, &unavailable, "the slug lookup is retryable too")
	require.Error(t, store.Ping(context.Background()))
}

// Wrong password: not a credentials problem of the plugin; retryable, and
// the password is not echoed.
func TestWrongNeo4jPasswordIsUnavailable(t *testing.T) {
	t.Parallel()
	cfg := neo4jConfig(t)
	// Another user: failed logins lock the account they name for a while,
	// and the shared test server's "neo4j" must stay usable.
	cfg.User = "no-such-user"
	cfg.Password = "definitely-not-the-password"
	reader := sdkmetric.NewManualReader()
	store, err := Open(cfg, mustKeyring(t, newKey(t)), WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
	require.NoError(t, err)
	defer store.Close(context.Background())
	r, err := NewResolver(store)
	require.NoError(t, err)
	_, err = r.Resolve(context.Background(), Request{PluginID: "p1", Manifest: manifest(plugins.AuthAPIToken, "token")})
	var unavailable *plugins.PluginUnavailableError
	require.ErrorAs(t, err, &unavailable)
	require.False(t, strings.Contains(err.Error(), cfg.Password))
	e := &env{t: t, reader: reader}
	require.EqualValues(t, 1, e.queries("read_configuration"), "an authentication failure is not retried in place")
}

func TestOpenValidation(t *testing.T) {
	t.Parallel()
	_, err := Open(Config{}, mustKeyring(t, newKey(t)))
	require.ErrorIs(t, err, ErrNoURL)
	_, err = Open(Config{URL: "bolt://127.0.0.1:7687"}, nil)
	require.ErrorIs(t, err, ErrKeyNotConfigured)
	_, err = Open(Config{URL: "nope://user:s3cr3t@host"}, mustKeyring(t, newKey(t)))
	require.Error(t, err)
	require.NotContains(t, err.Error(), "s3cr3t")
}

func TestPingAndFindPlugin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	ctx := context.Background()
	require.NoError(t, e.store.Ping(ctx))

	svc, id := newID(t), newID(t)
	e.exec(`CREATE (:ThirdPartyService {slug: $svc})-[:HAS_PLUGIN]->(:Plugin {id: $id, plugin_slug: 'test-plugin'})`,
		map[string]any{"svc": svc, "id": id})
	got, found, err := e.store.FindPluginID(ctx, svc, "test-plugin")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, id, got)
	_, found, err = e.store.FindPluginID(ctx, svc, "other-plugin")
	require.NoError(t, err)
	require.False(t, found)

	slug, found, err := e.store.PluginSlug(ctx, id)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "test-plugin", slug)

	e.exec(`MATCH (s:ThirdPartyService {slug: $svc}) CREATE (s)-[:HAS_PLUGIN]->(:Plugin {id: $id2, plugin_slug: 'test-plugin'})`,
		map[string]any{"svc": svc, "id2": newID(t)})
	_, _, err = e.store.FindPluginID(ctx, svc, "test-plugin")
	var ambiguous *AmbiguousPluginError
	require.ErrorAs(t, err, &ambiguous)
}
