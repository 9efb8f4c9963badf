package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/creds"
	"github.com/aweber-imbi/imbi-worker/internal/pluginreg"
	"github.com/aweber-imbi/imbi-worker/internal/registry"
	"github.com/aweber-imbi/imbi-worker/internal/testenv"
	"github.com/aweber-imbi/imbi-worker/plugins"
)

// credsEnv points the creds commands at the test Neo4j (scripts/neo4j.sh)
// with a fresh key; skipped without Neo4j on a laptop, a failure in CI.
func credsEnv(t *testing.T) (key string, drv neo4j.DriverWithContext) {
	t.Helper()
	testenv.Neo4jURL(t)
	key, err := creds.GenerateKey()
	require.NoError(t, err)
	t.Setenv(creds.EnvEncryptionKey, key)
	t.Setenv(creds.EnvEncryptionKeys, "")
	cfg := creds.ConfigFromEnv(os.Getenv)
	drv, err = neo4j.NewDriverWithContext(cfg.URL, neo4j.BasicAuth(cfg.User, cfg.Password, ""))
	require.NoError(t, err)
	t.Cleanup(func() { _ = drv.Close(context.Background()) })
	return key, drv
}

func credsPluginID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "cli-" + hex.EncodeToString(b[:])
}

func runCLI(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	root := NewRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

func createPlugin(t *testing.T, drv neo4j.DriverWithContext, id, slug string) {
	t.Helper()
	_, err := neo4j.ExecuteQuery(context.Background(), drv,
		`CREATE (:Plugin {id: $id, plugin_slug: $slug})`, map[string]any{"id": id, "slug": slug},
		neo4j.EagerResultTransformer, neo4j.ExecuteQueryWithDatabase(os.Getenv(creds.EnvNeo4jDatabase)))
	require.NoError(t, err)
}

func TestCredsSetKeysAndStdin(t *testing.T) {
	const canary = "CANARY-cli-5e1f"
	_, drv := credsEnv(t)
	id := credsPluginID()
	createPlugin(t, drv, id, "cli-test")

	out, errOut, err := runCLI(t, "", "creds", "set", id, "token="+canary, "region=us-east-1", "zero=0")
	require.NoError(t, err, errOut)
	require.Equal(t, "token\nregion\nzero\n", out, "a string \"0\" is truthy")

	// Patch from stdin as JSON: null and "" delete, order kept.
	out, errOut, err = runCLI(t, `{"region": null, "zero": "", "extra": "x"}`, "creds", "set", id, "--from-stdin")
	require.NoError(t, err, errOut)
	require.Equal(t, "token\nextra\n", out)
	// … and as key=value lines.
	out, _, err = runCLI(t, "# comment\nextra=\n\nnew=v\n", "creds", "set", id, "--from-stdin")
	require.NoError(t, err)
	require.Equal(t, "token\nnew\n", out)

	out, _, err = runCLI(t, "", "creds", "keys", id)
	require.NoError(t, err)
	require.Equal(t, "token\nnew\n", out)
	require.NotContains(t, out+errOut, canary)

	_, _, err = runCLI(t, "", "creds", "keys", "no-such-"+id)
	require.ErrorContains(t, err, "no Plugin node")
	_, _, err = runCLI(t, "", "creds", "set", id, "novalue")
	require.ErrorContains(t, err, "update 1 is not key=value")
	_, _, err = runCLI(t, `["x"]`, "creds", "set", id, "--from-stdin")
	require.ErrorContains(t, err, "JSON object")
}

func TestCredsRefusesWithoutKey(t *testing.T) {
	_, _ = credsEnv(t)
	t.Setenv(creds.EnvEncryptionKey, "")
	_, _, err := runCLI(t, "", "creds", "keys", "x")
	require.ErrorIs(t, err, creds.ErrKeyNotConfigured)
	t.Setenv(creds.EnvEncryptionKey, "not-a-key-material-xyz")
	_, _, err = runCLI(t, "", "creds", "keys", "x")
	require.ErrorContains(t, err, "Invalid encryption key in IMBI_AUTH_ENCRYPTION_KEY")
	require.NotContains(t, err.Error(), "not-a-key-material-xyz")
}

type checkPlugin struct{ m plugins.PluginManifest }

func (p checkPlugin) Manifest() plugins.PluginManifest { return p.m }

func (checkPlugin) Actions() ([]plugins.ActionDescriptor, error) { return nil, nil }

func TestCredsCheck(t *testing.T) {
	key, drv := credsEnv(t)
	reg := registry.New(func() []pluginreg.Registration {
		return []pluginreg.Registration{{Name: "check", Load: func() (any, error) {
			return checkPlugin{plugins.PluginManifest{Slug: "check-plugin", Name: "Check", PluginType: plugins.TypeWebhook,
				AuthType: plugins.AuthAPIToken, APIVersion: 1, Credentials: []plugins.CredentialField{
					{Name: "token", Label: "Token", Required: true},
					{Name: "region", Label: "Region", Required: false},
					{Name: "account", Label: "Account", Required: true},
				}}}, nil
		}}}
	})
	res, err := reg.Load()
	require.NoError(t, err)
	require.Equal(t, []string{"check-plugin"}, res.Loaded, "%v", res.Errors)
	kr, err := creds.NewKeyring(key)
	require.NoError(t, err)
	store, err := creds.Open(creds.ConfigFromEnv(os.Getenv), kr)
	require.NoError(t, err)
	defer store.Close(context.Background())

	id := credsPluginID()
	createPlugin(t, drv, id, "check-plugin")
	_, err = store.PatchConfiguration(context.Background(), id, []creds.Update{{Key: "token", Value: "t"}})
	require.NoError(t, err)
	var out bytes.Buffer
	err = checkCredentials(context.Background(), &out, store, reg, id)
	require.ErrorIs(t, err, errCheckFailed)
	require.ErrorContains(t, err, "missing account")
	require.Contains(t, out.String(), "account                  MISSING (required)")
	require.Contains(t, out.String(), "region                   not set (optional)")

	_, err = store.PatchConfiguration(context.Background(), id, []creds.Update{{Key: "account", Value: "a"}})
	require.NoError(t, err)
	out.Reset()
	require.NoError(t, checkCredentials(context.Background(), &out, store, reg, id))
	require.Contains(t, out.String(), "ok\n")

	other := credsPluginID()
	createPlugin(t, drv, other, "unregistered")
	require.ErrorContains(t, checkCredentials(context.Background(), &out, store, reg, other), "not registered")
}

func TestCredsRotateCommand(t *testing.T) {
	oldKey, drv := credsEnv(t)
	id := credsPluginID()
	createPlugin(t, drv, id, "rot")
	_, _, err := runCLI(t, "", "creds", "set", id, "token=v")
	require.NoError(t, err)

	newKey, err := creds.GenerateKey()
	require.NoError(t, err)
	t.Setenv(creds.EnvEncryptionKeys, newKey+","+oldKey)
	out, errOut, err := runCLI(t, "", "creds", "rotate", "--rotate-batch", "50")
	require.NoError(t, err, errOut)
	require.Contains(t, out, "Plugin.plugin_configuration: scanned=")
	require.Contains(t, out, "ServiceApplication.client_secret: scanned=")

	// Only the new key is needed from now on.
	t.Setenv(creds.EnvEncryptionKeys, "")
	t.Setenv(creds.EnvEncryptionKey, newKey)
	out, _, err = runCLI(t, "", "creds", "keys", id)
	require.NoError(t, err)
	require.Equal(t, "token\n", out)
}

// FuzzReadUpdates: `creds set --from-stdin` input is outside input. It
// never panics, and every accepted update has a non-empty key.
func FuzzReadUpdates(f *testing.F) {
	for _, s := range []string{`{"a": "b", "c": null}`, "a=b\n# x\nc=\n", `["x"]`, `{"a": 1}`, "=v", `{"a": "b"} trailing`, "a=b=c\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		updates, err := readUpdates(strings.NewReader(in))
		if err != nil {
			return
		}
		for _, u := range updates {
			if u.Key == "" {
				t.Fatalf("empty key accepted from %q", in)
			}
		}
	})
}

func TestReadUpdates(t *testing.T) {
	cases := []struct {
		in      string
		want    []creds.Update
		wantErr bool
	}{
		{in: `{"b": "1", "a": null, "c": ""}`, want: []creds.Update{{Key: "b", Value: "1"}, {Key: "a"}, {Key: "c"}}},
		{in: "x=1\n\n# skip\ny=\nz=a=b\r\n", want: []creds.Update{{Key: "x", Value: "1"}, {Key: "y"}, {Key: "z", Value: "a=b"}}},
		{in: `{"a": 1}`, wantErr: true},
		{in: `{"a": "b"} {}`, wantErr: true},
		{in: `[]`, wantErr: true},
		{in: `{"": "v"}`, wantErr: true},
		{in: "novalue", wantErr: true},
		{in: "=v", wantErr: true},
	}
	for _, c := range cases {
		got, err := readUpdates(strings.NewReader(c.in))
		if c.wantErr {
			require.Error(t, err, c.in)
			continue
		}
		require.NoError(t, err, c.in)
		require.Equal(t, c.want, got, c.in)
	}
}

// The run command's wiring: no URL → no store; a URL without a valid key
// refuses to start; with both, the resolver loads credentials and pings.
func TestCredentialSourceFromFlags(t *testing.T) {
	key, drv := credsEnv(t)
	var none neo4jFlags
	r, closeFn, err := none.credentialSource(nil, nil, time.Minute)
	require.NoError(t, err)
	require.Nil(t, r)
	require.NoError(t, closeFn(context.Background()))

	cfg := creds.ConfigFromEnv(os.Getenv)
	nf := neo4jFlags{url: cfg.URL, user: cfg.User, password: cfg.Password, database: cfg.Database}
	t.Setenv(creds.EnvEncryptionKey, "")
	_, _, err = nf.credentialSource(nil, nil, time.Minute)
	require.ErrorIs(t, err, creds.ErrKeyNotConfigured)

	t.Setenv(creds.EnvEncryptionKey, key)
	r, closeFn, err = nf.credentialSource(nil, nil, time.Minute)
	require.NoError(t, err)
	defer closeFn(context.Background())
	require.NoError(t, r.Ping(context.Background()))
	id := credsPluginID()
	createPlugin(t, drv, id, "wired")
	_, _, err = runCLI(t, "", "creds", "set", id, "token=t")
	require.NoError(t, err)
	got, err := r.Resolve(context.Background(), creds.Request{PluginID: id,
		Manifest: plugins.PluginManifest{Slug: "wired", AuthType: plugins.AuthAPIToken,
			Credentials: []plugins.CredentialField{{Name: "token", Label: "Token", Required: true}}}})
	require.NoError(t, err)
	require.Equal(t, "t", got["token"])
}
