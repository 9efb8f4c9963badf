package creds

// The 31 cases of Python's tests/common/test_plugins/test_credentials.py
// (plugins-spec §12, cases 49–79), run against the real Neo4j that
// scripts/neo4j.sh starts. Python fed a fake DB fixed rows; here the rows
// come from real nodes, and "decrypt raises" comes from raisingCipher.

import (
	"context"
	"errors"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/plugins"
)

// requireMissing asserts err is a *plugins.PluginCredentialsMissing with
// exactly the text plugins-spec §10.5–10.6 gives.
func requireMissing(t *testing.T, err error, want string) {
	t.Helper()
	var missing *plugins.PluginCredentialsMissing
	require.ErrorAs(t, err, &missing)
	require.Equal(t, want, missing.Error())
}

// requireConfigError asserts err is a *ConfigurationError with exactly the
// strict reader's text (plugins-spec §10.8) for plugin id.
func requireConfigError(t *testing.T, err error, id, reason string) {
	t.Helper()
	var cfgErr *ConfigurationError
	require.ErrorAs(t, err, &cfgErr)
	require.Equal(t, "plugin_configuration for plugin_id='"+id+"' "+reason+"; refusing to overwrite", cfgErr.Error())
}

const (
	missingToken  = "Missing required credentials for plugin 'test-plugin': ['token']"
	notLinked     = "Plugin 'test-plugin' is not linked to a ServiceApplication; pick one on the Plugins tab"
	missingClient = "Linked ServiceApplication for plugin 'test-plugin' is missing client_id or client_secret"
	noSecret      = "Linked ServiceApplication for plugin 'test-plugin' has no client_secret"
	undecryptable = "Linked ServiceApplication for plugin 'test-plugin' has a client_secret that could not be decrypted"
)

// --- GetPluginCredentialsAPITokenTestCase (49–58) ---

func TestAPIToken_ReturnsDecryptedDict(t *testing.T) { // 49
	t.Parallel()
	e, id := newEnv(t, nil, nil), newID(t)
	e.plugin(id, e.encrypted(`{"token": "secret-value"}`))
	got, err := e.store.PluginCredentials(context.Background(), id, manifest(plugins.AuthAPIToken, "token"))
	require.NoError(t, err)
	require.Equal(t, plugins.Credentials{"token": "secret-value"}, got)
}

func TestAPIToken_AWSIAMICRoutesToConfigurationPath(t *testing.T) { // 50
	t.Parallel()
	e, id := newEnv(t, nil, nil), newID(t)
	e.plugin(id, e.encrypted(`{"client_id": "abc"}`))
	got, err := e.store.PluginCredentials(context.Background(), id, manifest(plugins.AuthAWSIAMIC, "client_id"))
	require.NoError(t, err)
	require.Equal(t, plugins.Credentials{"client_id": "abc"}, got)
	require.Zero(t, e.queries("read_application"), "aws-iam-ic must not read a ServiceApplication")
}

func TestAPIToken_MissingRecordRaisesMissingCredentials(t *testing.T) { // 51
	t.Parallel()
	e := newEnv(t, nil, nil)
	_, err := e.store.PluginCredentials(context.Background(), newID(t), manifest(plugins.AuthAPIToken, "token"))
	requireMissing(t, err, missingToken)
}

func TestAPIToken_NullRecordRaisesMissingCredentials(t *testing.T) { // 52
	t.Parallel()
	e, id := newEnv(t, nil, nil), newID(t)
	e.plugin(id, nil)
	_, err := e.store.PluginCredentials(context.Background(), id, manifest(plugins.AuthAPIToken, "token"))
	requireMissing(t, err, missingToken)
}

func TestAPIToken_RequiredFieldWithNullValueRaises(t *testing.T) { // 53
	t.Parallel()
	e, id := newEnv(t, nil, nil), newID(t)
	e.plugin(id, e.encrypted(`{"token": null}`))
	_, err := e.store.PluginCredentials(context.Background(), id, manifest(plugins.AuthAPIToken, "token"))
	requireMissing(t, err, missingToken)
}

func TestAPIToken_OptionalFieldNotRequired(t *testing.T) { // 54
	t.Parallel()
	e, id := newEnv(t, nil, nil), newID(t)
	e.plugin(id, e.encrypted(`{}`))
	got, err := e.store.PluginCredentials(context.Background(), id, manifest(plugins.AuthAPIToken, "token?"))
	require.NoError(t, err)
	require.Equal(t, plugins.Credentials{}, got)
}

func TestAPIToken_DecryptFailureTreatedAsMissing(t *testing.T) { // 55
	t.Parallel()
	e, id := newEnv(t, nil, nil), newID(t)
	other := mustKeyring(t, newKey(t))
	tok, err := other.Encrypt(`{"token": "x"}`)
	require.NoError(t, err)
	e.plugin(id, tok)
	_, err = e.store.PluginCredentials(context.Background(), id, manifest(plugins.AuthAPIToken, "token"))
	requireMissing(t, err, missingToken)
}

func TestAPIToken_InvalidJSONBlobTreatedAsMissing(t *testing.T) { // 56
	t.Parallel()
	e, id := newEnv(t, nil, nil), newID(t)
	e.plugin(id, e.encrypted("not-json"))
	_, err := e.store.PluginCredentials(context.Background(), id, manifest(plugins.AuthAPIToken, "token"))
	requireMissing(t, err, missingToken)
	require.Contains(t, e.logs.String(), "Plugin credentials JSON parse failed for plugin_id="+id)
	require.Contains(t, e.logs.String(), "level=WARN")
}

func TestAPIToken_DecryptRaisesLoggedAndTreatedAsMissing(t *testing.T) { // 57
	t.Parallel()
	kr := mustKeyring(t, newKey(t))
	e, id := newEnv(t, raisingCipher{kr}, kr), newID(t)
	e.plugin(id, e.encrypted(`{"token": "x"}`))
	_, err := e.store.PluginCredentials(context.Background(), id, manifest(plugins.AuthAPIToken, "token"))
	requireMissing(t, err, missingToken)
	require.Contains(t, e.logs.String(), "level=WARN")
	require.Contains(t, e.logs.String(), "Plugin credentials decrypt failed for plugin_id="+id)
}

func TestAPIToken_StripsNullValuesFromResult(t *testing.T) { // 58
	t.Parallel()
	e, id := newEnv(t, nil, nil), newID(t)
	e.plugin(id, e.encrypted(`{"token": "real", "extra": null}`))
	got, err := e.store.PluginCredentials(context.Background(), id, manifest(plugins.AuthAPIToken, "token"))
	require.NoError(t, err)
	require.Equal(t, plugins.Credentials{"token": "real"}, got)
}

// Beyond case 53 (§10.5 step 3): a required field is missing when its
// value is falsy in Python — "", 0, false, [] and {} as well as null —
// while a truthy non-string satisfies it (and is returned as Python's str()).
func TestAPIToken_RequiredFieldWithFalsyValueRaises(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	tests := []struct {
		blob    string
		want    plugins.Credentials
		wantErr string
	}{
		{`{"token": ""}`, nil, missingToken},
		{`{"token": 0}`, nil, missingToken},
		{`{"token": 0.0}`, nil, missingToken},
		{`{"token": false}`, nil, missingToken},
		{`{"token": []}`, nil, missingToken},
		{`{"token": {}}`, nil, missingToken},
		{`{"token": 1}`, plugins.Credentials{"token": "1"}, ""},
		{`{"token": true}`, plugins.Credentials{"token": "True"}, ""},
		{`{"token": " "}`, plugins.Credentials{"token": " "}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.blob, func(t *testing.T) {
			id := newID(t)
			e.plugin(id, e.encrypted(tc.blob))
			got, err := e.store.PluginCredentials(context.Background(), id, manifest(plugins.AuthAPIToken, "token"))
			if tc.wantErr != "" {
				requireMissing(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

// Several required fields missing at once are all named, in manifest
// order (not blob or alphabetical order); optional ones never are.
func TestAPIToken_SeveralMissingFieldsListedInManifestOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	tests := []struct {
		name   string
		blob   any
		fields []string
		want   string
	}{
		{"null_blob_all_required", nil, []string{"token", "region?", "account", "secret"},
			"Missing required credentials for plugin 'test-plugin': ['token', 'account', 'secret']"},
		{"some_present_some_falsy", `{"secret": "s", "account": "", "zone": null}`, []string{"zone", "token", "region?", "account", "secret"},
			"Missing required credentials for plugin 'test-plugin': ['zone', 'token', 'account']"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := newID(t)
			blob := tc.blob
			if s, ok := blob.(string); ok {
				blob = e.encrypted(s)
			}
			e.plugin(id, blob)
			_, err := e.store.PluginCredentials(context.Background(), id, manifest(plugins.AuthAPIToken, tc.fields...))
			requireMissing(t, err, tc.want)
		})
	}
}

// --- GetPluginCredentialsApplicationTestCase (59–65) ---

func TestApplication_OAuth2ReturnsClientCredentials(t *testing.T) { // 59
	t.Parallel()
	e, id := newEnv(t, nil, nil), newID(t)
	e.plugin(id, nil)
	e.app(id, "client-abc", e.encrypted("shh"))
	for _, auth := range []plugins.AuthType{plugins.AuthOAuth2, plugins.AuthOIDC} {
		// The manifest's fields are not consulted on this path.
		got, err := e.store.PluginCredentials(context.Background(), id, manifest(auth, "unrelated"))
		require.NoError(t, err)
		require.Equal(t, plugins.Credentials{"client_id": "client-abc", "client_secret": "shh"}, got)
	}
}

func TestApplication_NoLinkedApplicationRaises(t *testing.T) { // 60
	t.Parallel()
	e, id := newEnv(t, nil, nil), newID(t)
	e.plugin(id, nil)
	_, err := e.store.PluginCredentials(context.Background(), id, manifest(plugins.AuthOAuth2))
	requireMissing(t, err, notLinked)
}

func TestApplication_MissingClientIDRaises(t *testing.T) { // 61
	t.Parallel()
	e, id := newEnv(t, nil, nil), newID(t)
	e.plugin(id, nil)
	e.app(id, nil, e.encrypted("shh"))
	_, err := e.store.PluginCredentials(context.Background(), id, manifest(plugins.AuthOAuth2))
	requireMissing(t, err, missingClient)
}

func TestApplication_MissingClientSecretRaises(t *testing.T) { // 62
	t.Parallel()
	e, id := newEnv(t, nil, nil), newID(t)
	e.plugin(id, nil)
	e.app(id, "client-abc", nil)
	_, err := e.store.PluginCredentials(context.Background(), id, manifest(plugins.AuthOIDC))
	requireMissing(t, err, missingClient)
}

func TestApplication_SecretDecryptFailureRaises(t *testing.T) { // 63
	t.Parallel()
	e, id := newEnv(t, nil, nil), newID(t)
	other := mustKeyring(t, newKey(t))
	tok, err := other.Encrypt("shh")
	require.NoError(t, err)
	e.plugin(id, nil)
	e.app(id, "client-abc", tok)
	_, err = e.store.PluginCredentials(context.Background(), id, manifest(plugins.AuthOAuth2))
	requireMissing(t, err, noSecret)
}

func TestApplication_SecretDecryptRaisesIsWrapped(t *testing.T) { // 64
	t.Parallel()
	kr := mustKeyring(t, newKey(t))
	e, id := newEnv(t, raisingCipher{kr}, kr), newID(t)
	e.plugin(id, nil)
	e.app(id, "client-abc", e.encrypted("shh"))
	_, err := e.store.PluginCredentials(context.Background(), id, manifest(plugins.AuthOAuth2))
	requireMissing(t, err, undecryptable)
	require.True(t, errors.Is(err, errDecryptBoom), "the cause is chained")
	require.Contains(t, e.logs.String(), "client_secret decrypt failed for plugin_id="+id)
}

func TestApplication_EmptySecretAfterDecryptRaises(t *testing.T) { // 65
	t.Parallel()
	e, id := newEnv(t, nil, nil), newID(t)
	e.plugin(id, nil)
	e.app(id, "client-abc", e.encrypted(""))
	_, err := e.store.PluginCredentials(context.Background(), id, manifest(plugins.AuthOAuth2))
	requireMissing(t, err, noSecret)
}

// --- PatchPluginConfigurationTestCase (66–75) ---

func TestPatch_SeedsBlobWhenEmptyString(t *testing.T) { // 66
	t.Parallel()
	e, id := newEnv(t, nil, nil), newID(t)
	e.plugin(id, "")
	keys, err := e.store.PatchConfiguration(context.Background(), id, []Update{{"token", "value"}})
	require.NoError(t, err)
	require.Equal(t, []string{"token"}, keys)
}

func TestPatch_SeedsBlobWhenAbsent(t *testing.T) { // 67
	t.Parallel()
	e, id := newEnv(t, nil, nil), newID(t)
	e.plugin(id, nil)
	keys, err := e.store.PatchConfiguration(context.Background(), id, []Update{{"token", "value"}})
	require.NoError(t, err)
	require.Equal(t, []string{"token"}, keys)
	// Exactly two executions: the strict read, then the write.
	require.EqualValues(t, 1, e.queries("read_configuration"))
	require.EqualValues(t, 1, e.queries("write_configuration"))
	require.EqualValues(t, 2, e.queries(""))
	tok := e.storedBlob(id).(string)
	plain, ok, err := e.kr.Decrypt(tok)
	require.NoError(t, err)
	require.True(t, ok)
	require.JSONEq(t, `{"token":"value"}`, plain)
}

func TestPatch_MergesWithExisting(t *testing.T) { // 68
	t.Parallel()
	e, id := newEnv(t, nil, nil), newID(t)
	e.plugin(id, e.encrypted(`{"token": "old", "extra": "keep"}`))
	keys, err := e.store.PatchConfiguration(context.Background(), id, []Update{{"token", "new"}})
	require.NoError(t, err)
	sort.Strings(keys)
	require.Equal(t, []string{"extra", "token"}, keys)
	got := e.storedConfig(id)
	require.Equal(t, []string{"token", "extra"}, got.keys, "existing keys keep their position")
	require.Equal(t, map[string]any{"token": "new", "extra": "keep"}, got.values)
}

func TestPatch_NoneValueRemovesKey(t *testing.T) { // 69 (Go has no None: "" is both)
	t.Parallel()
	e, id := newEnv(t, nil, nil), newID(t)
	e.plugin(id, e.encrypted(`{"token": "old", "extra": "keep"}`))
	keys, err := e.store.PatchConfiguration(context.Background(), id, []Update{{Key: "token"}})
	require.NoError(t, err)
	require.Equal(t, []string{"extra"}, keys)
	require.Equal(t, map[string]any{"extra": "keep"}, e.storedConfig(id).values)
}

func TestPatch_EmptyStringValueRemovesKey(t *testing.T) { // 70
	t.Parallel()
	e, id := newEnv(t, nil, nil), newID(t)
	e.plugin(id, e.encrypted(`{"token": "old", "extra": "keep"}`))
	keys, err := e.store.PatchConfiguration(context.Background(), id, []Update{{"token", ""}, {"absent", ""}})
	require.NoError(t, err)
	require.Equal(t, []string{"extra"}, keys)
}

func TestPatch_RefusesToOverwriteUndecryptableBlob(t *testing.T) { // 71
	t.Parallel()
	e, id := newEnv(t, nil, nil), newID(t)
	other := mustKeyring(t, newKey(t))
	tok, err := other.Encrypt(`{"token": "x"}`)
	require.NoError(t, err)
	e.plugin(id, tok)
	_, err = e.store.PatchConfiguration(context.Background(), id, []Update{{"token", "new"}})
	requireConfigError(t, err, id, "decrypted to None")
	require.Equal(t, tok, e.storedBlob(id), "nothing written")
	require.Zero(t, e.queries("write_configuration"))
}

func TestPatch_RefusesWhenDecryptRaises(t *testing.T) { // 72
	t.Parallel()
	kr := mustKeyring(t, newKey(t))
	e, id := newEnv(t, raisingCipher{kr}, kr), newID(t)
	tok := e.encrypted(`{"token": "x"}`)
	e.plugin(id, tok)
	_, err := e.store.PatchConfiguration(context.Background(), id, []Update{{"token", "new"}})
	requireConfigError(t, err, id, "could not be decrypted")
	require.Equal(t, tok, e.storedBlob(id))
}

func TestPatch_RefusesToOverwriteInvalidJSON(t *testing.T) { // 73
	t.Parallel()
	e, id := newEnv(t, nil, nil), newID(t)
	e.plugin(id, e.encrypted("not-json"))
	_, err := e.store.PatchConfiguration(context.Background(), id, []Update{{"token", "new"}})
	requireConfigError(t, err, id, "is not valid JSON")
}

func TestPatch_RefusesToOverwriteNonObjectJSON(t *testing.T) { // 74
	t.Parallel()
	e, id := newEnv(t, nil, nil), newID(t)
	e.plugin(id, e.encrypted(`["a", "b"]`))
	_, err := e.store.PatchConfiguration(context.Background(), id, []Update{{"token", "new"}})
	requireConfigError(t, err, id, "must be a JSON object")
}

func TestPatch_DecryptsToNoneRaises(t *testing.T) { // 75
	t.Parallel()
	e, id := newEnv(t, nil, nil), newID(t)
	e.plugin(id, "garbage-not-a-fernet-token")
	_, err := e.store.PatchConfiguration(context.Background(), id, []Update{{"token", "new"}})
	requireConfigError(t, err, id, "decrypted to None")
}

// --- GetPluginConfigurationKeysTestCase (76–79) ---

func TestKeys_ReturnsPopulatedKeys(t *testing.T) { // 76
	t.Parallel()
	e, id := newEnv(t, nil, nil), newID(t)
	e.plugin(id, e.encrypted(`{"token": "real", "empty": "", "zero": 0, "no": false, "list": [], "null": null}`))
	keys, err := e.store.ConfigurationKeys(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, []string{"token"}, keys)
}

func TestKeys_EmptyWhenNoBlob(t *testing.T) { // 77
	t.Parallel()
	e, id := newEnv(t, nil, nil), newID(t)
	e.plugin(id, nil)
	keys, err := e.store.ConfigurationKeys(context.Background(), id)
	require.NoError(t, err)
	require.Empty(t, keys)
}

func TestKeys_EmptyWhenNoRecords(t *testing.T) { // 78
	t.Parallel()
	e := newEnv(t, nil, nil)
	keys, err := e.store.ConfigurationKeys(context.Background(), newID(t))
	require.NoError(t, err)
	require.Empty(t, keys)
}

func TestKeys_UnreadableBlobReturnsEmpty(t *testing.T) { // 79
	t.Parallel()
	e, id := newEnv(t, nil, nil), newID(t)
	other := mustKeyring(t, newKey(t))
	tok, err := other.Encrypt(`{"token": "x"}`)
	require.NoError(t, err)
	e.plugin(id, tok)
	keys, err := e.store.ConfigurationKeys(context.Background(), id)
	require.NoError(t, err)
	require.Empty(t, keys)
	require.Contains(t, e.logs.String(), "level=WARN")
	require.Contains(t, e.logs.String(), "plugin_configuration unreadable for plugin_id="+id+"; reporting no keys")
}
