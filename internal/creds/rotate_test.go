package creds

import (
	"context"
	"encoding/base64"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/plugins"
)

// Rotation moves every secret that an old key opens under the new first
// key, leaves current and undecryptable values alone, and a rerun changes
// nothing (idempotent, so an interrupted run is finished by running again).
// Other tests' nodes share the database (under random keys), so the
// assertions look at this test's nodes and at lower bounds of the counts.
func TestRotateReencryptsUnderFirstKey(t *testing.T) {
	t.Parallel()
	oldKey, freshKey := newKey(t), newKey(t)
	oldRing, newRing := mustKeyring(t, oldKey), mustKeyring(t, freshKey)
	both := mustKeyring(t, freshKey, oldKey)
	e := newEnv(t, nil, both)
	ctx := context.Background()

	enc := func(kr *Keyring, s string) string {
		tok, err := kr.Encrypt(s)
		require.NoError(t, err)
		return tok
	}
	oldPlugins := make([]string, 5)
	for i := range oldPlugins {
		oldPlugins[i] = newID(t)
		e.plugin(oldPlugins[i], enc(oldRing, `{"token": "old-`+oldPlugins[i]+`"}`))
	}
	legacy := newID(t)
	e.plugin(legacy, base64.URLEncoding.EncodeToString([]byte(enc(oldRing, `{"token": "legacy"}`))))
	current := newID(t)
	currentTok := enc(newRing, `{"token": "current"}`)
	e.plugin(current, currentTok)
	stranger := newID(t)
	strangerTok := enc(mustKeyring(t, newKey(t)), `{"token": "?"}`)
	e.plugin(stranger, strangerTok)
	withApp := newID(t)
	e.plugin(withApp, nil)
	e.app(withApp, "cid", enc(oldRing, "app-secret"))
	// The API's other ServiceApplication secrets are rotated too.
	otherSecrets := map[string]string{"webhook_secret": "wh", "private_key": "pk", "signing_secret": "ss"}
	for prop, plain := range otherSecrets {
		e.exec(`MATCH (:Plugin {id: $id})-[:USES_APPLICATION]->(a:ServiceApplication) SET a[$prop] = $tok`,
			map[string]any{"id": withApp, "prop": prop, "tok": enc(oldRing, plain)})
	}

	stats, err := e.store.Rotate(ctx, both, 2) // tiny batches exercise paging
	require.NoError(t, err)
	require.Len(t, stats, len(rotateTargets))
	require.Equal(t, "Plugin", stats[0].Label)
	require.GreaterOrEqual(t, stats[0].Rotated, 6)
	require.GreaterOrEqual(t, stats[0].Current, 1)
	require.GreaterOrEqual(t, stats[0].Undecryptable, 1)
	require.GreaterOrEqual(t, stats[1].Rotated, 1)

	// Everything of ours now opens with the new key alone, same plaintext.
	for _, id := range append(oldPlugins, legacy) {
		tok := e.storedBlob(id).(string)
		require.True(t, newRing.IsCurrent(tok), id)
		_, ok, _ := oldRing.Decrypt(tok)
		require.False(t, ok)
	}
	got, err := e.store.PluginCredentials(ctx, oldPlugins[0], manifest(plugins.AuthAPIToken, "token"))
	require.NoError(t, err)
	require.Equal(t, "old-"+oldPlugins[0], got["token"])
	require.Equal(t, currentTok, e.storedBlob(current), "current values are not rewritten")
	require.Equal(t, strangerTok, e.storedBlob(stranger), "undecryptable values are left alone")

	newOnly, err := Open(e.store.cfg, newRing)
	require.NoError(t, err)
	defer newOnly.Close(ctx)
	app, err := newOnly.PluginCredentials(ctx, withApp, manifest(plugins.AuthOAuth2))
	require.NoError(t, err)
	require.Equal(t, "app-secret", app["client_secret"])
	for prop, plain := range otherSecrets {
		recs := e.exec(`MATCH (:Plugin {id: $id})-[:USES_APPLICATION]->(a:ServiceApplication) RETURN a[$prop] AS tok`,
			map[string]any{"id": withApp, "prop": prop})
		require.Len(t, recs, 1)
		tok, _ := recs[0].Get("tok")
		got, ok, err := newRing.Decrypt(tok.(string))
		require.NoError(t, err)
		require.True(t, ok, prop)
		require.Equal(t, plain, got, prop)
	}

	// Idempotent: a rerun rewrites none of ours.
	before := e.storedBlob(oldPlugins[1])
	_, err = e.store.Rotate(ctx, both, 0)
	require.NoError(t, err)
	require.Equal(t, before, e.storedBlob(oldPlugins[1]))
}
