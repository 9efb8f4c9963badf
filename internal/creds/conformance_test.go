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

func requireMissing(t *testing.T, err error, contains string) {
	t.Helper()
	var missing *plugins.PluginCredentialsMissing
	require.ErrorAs(t, err, &missing)
	require.Contains(t, missing.Error(), contains)
}

func requireConfigError(t *testing.T, err error, contains string) {
	t.Helper()
	var cfgErr *ConfigurationError
	require.ErrorAs(t, err, &cfgErr)
	require.Contains(t, cfgErr.Error(), contains)
}

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
	requireMissing(t, err, "token")
	require.Equal(t, "Missing required credentials for plugin 'test-plugin': ['token']", err.Error())
}

func TestAPIToken_NullRecordRaisesMissingCredentials(t *testing.T) { // 52
	t.Parallel()
	e, id := newEnv(t, nil, nil), newID(t)
	e.plugin(id, nil)
	_, err := e.store.PluginCredentials(context.Background(), id, manifest(plugins.AuthAPIToken, "token"))
	requireMissing(t, err, "token")
}

func TestAPIToken_RequiredFieldWithNullValueRaises(t *testing.T) { // 53
	t.Parallel()
	e, id := newEnv(t, nil, nil), newID(t)
	e.plugin(id, e.encrypted(`{"token": null}`))
	_, err := e.store.PluginCredentials(context.Background(), id, manifest(plugins.AuthAPIToken, "token"))
	requireMissing(t, err, "token")
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
	requireMissing(t, err, "token")
}

func TestAPIToken_InvalidJSONBlobTreatedAsMissing(t *testing.T) { // 56
	t.Parallel()
	e, id := newEnv(t, nil, nil), newID(t)
	e.plugin(id, e.encrypted("not-json"))
	_, err := e.store.PluginCredentials(context.Background(), id, manifest(plugins.AuthAPIToken, "token"))
	requireMissing(t, err, "token")
	require.Contains(t, e.logs.String(), "Plugin credentials JSON parse failed for plugin_id="+id)
	require.Contains(t, e.logs.String(), "level=WARN")
}

func TestAPIToken_DecryptRaisesLoggedAndTreatedAsMissing(t *testing.T) { // 57
	t.Parallel()
	kr := mustKeyring(t, newKey(t))
	e, id := newEnv(t, raisingCipher{kr}, kr), newID(t)
	e.plugin(id, e.encrypted(`{"token": "x"}`))
	_, err := e.store.PluginCredentials(context.Background(), id, manifest(plugins.AuthAPIToken, "token"))
	requireMissing(t, err, "token")
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
	requireMissing(t, err, "ServiceApplication")
	require.Equal(t, "Plugin 'test-plugin' is not linked to a ServiceApplication; pick one on the Plugins tab", err.Error())
}

func TestApplication_MissingClientIDRaises(t *testing.T) { // 61
	t.Parallel()
	e, id := newEnv(t, nil, nil), newID(t)
	e.plugin(id, nil)
	e.app(id, nil, e.encrypted("shh"))
	_, err := e.store.PluginCredentials(context.Background(), id, manifest(plugins.AuthOAuth2))
	requireMissing(t, err, "Linked ServiceApplication for plugin 'test-plugin' is missing client_id or client_secret")
}

func TestApplication_MissingClientSecretRaises(t *testing.T) { // 62
	t.Parallel()
	e, id := newEnv(t, nil, nil), newID(t)
	e.plugin(id, nil)
	e.app(id, "client-abc", nil)
	_, err := e.store.PluginCredentials(context.Background(), id, manifest(plugins.AuthOIDC))
	requireMissing(t, err, "is missing client_id or client_secret")
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
	requireMissing(t, err, "no client_secret")
	require.Equal(t, "Linked ServiceApplication for plugin 'test-plugin' has no client_secret", err.Error())
}

func TestApplication_SecretDecryptRaisesIsWrapped(t *testing.T) { // 64
	t.Parallel()
	kr := mustKeyring(t, newKey(t))
	e, id := newEnv(t, raisingCipher{kr}, kr), newID(t)
	e.plugin(id, nil)
	e.app(id, "client-abc", e.encrypted("shh"))
	_, err := e.store.PluginCredentials(context.Background(), id, manifest(plugins.AuthOAuth2))
	requireMissing(t, err, "could not be decrypted")
	require.True(t, errors.Is(err, errDecryptBoom), "the cause is chained")
	require.Contains(t, e.logs.String(), "client_secret decrypt failed for plugin_id="+id)
}

func TestApplication_EmptySecretAfterDecryptRaises(t *testing.T) { // 65
	t.Parallel()
	e, id := newEnv(t, nil, nil), newID(t)
	e.plugin(id, nil)
	e.app(id, "client-abc", e.encrypted(""))
	_, err := e.store.PluginCredentials(context.Background(), id, manifest(plugins.AuthOAuth2))
	requireMissing(t, err, "no client_secret")
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
	requireConfigError(t, err, "decrypted to None")
	require.Equal(t, "plugin_configuration for plugin_id='"+id+"' decrypted to None; refusing to overwrite", err.Error())
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
	requireConfigError(t, err, "could not be decrypted")
	require.Equal(t, tok, e.storedBlob(id))
}

func TestPatch_RefusesToOverwriteInvalidJSON(t *testing.T) { // 73
	t.Parallel()
	e, id := newEnv(t, nil, nil), newID(t)
	e.plugin(id, e.encrypted("not-json"))
	_, err := e.store.PatchConfiguration(context.Background(), id, []Update{{"token", "new"}})
	requireConfigError(t, err, "valid JSON")
}

func TestPatch_RefusesToOverwriteNonObjectJSON(t *testing.T) { // 74
	t.Parallel()
	e, id := newEnv(t, nil, nil), newID(t)
	e.plugin(id, e.encrypted(`["a", "b"]`))
	_, err := e.store.PatchConfiguration(context.Background(), id, []Update{{"token", "new"}})
	requireConfigError(t, err, "must be")
}

func TestPatch_DecryptsToNoneRaises(t *testing.T) { // 75
	t.Parallel()
	e, id := newEnv(t, nil, nil), newID(t)
	e.plugin(id, "garbage-not-a-fernet-token")
	_, err := e.store.PatchConfiguration(context.Background(), id, []Update{{"token", "new"}})
	requireConfigError(t, err, "decrypted to None")
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
