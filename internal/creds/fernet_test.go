package creds

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/fernet/fernet-go"
	"github.com/stretchr/testify/require"
)

// Every Python-made fixture token decrypts (or not) exactly as Python's
// TokenEncryption.decrypt did when gen_fixtures.py ran.
func TestDecryptPythonFixtures(t *testing.T) {
	t.Parallel()
	fx := loadFixtures(t)
	kr := mustKeyring(t, fx.Key)
	for _, c := range fx.Configs {
		t.Run(c.Name, func(t *testing.T) {
			plain, ok, err := kr.Decrypt(c.Token)
			require.NoError(t, err)
			require.Equal(t, c.DecryptOK, ok)
			if c.Plaintext != nil {
				require.Equal(t, *c.Plaintext, plain)
			}
		})
	}
	for _, s := range fx.ClientSecrets {
		plain, ok, err := kr.Decrypt(s.Token)
		require.NoError(t, err)
		require.True(t, ok, s.Name)
		require.Equal(t, s.Plaintext, plain, s.Name)
	}
}

// fernet-go must not apply a TTL when given ttl <= 0: Python decrypts with
// no TTL, so a token from 2001 still opens. This pins the library version's
// behaviour (old kr/fernet rejected such tokens with ttl 0).
func TestDecryptHasNoTTL(t *testing.T) {
	t.Parallel()
	kr := mustKeyring(t, newKey(t))
	old, err := fernet.EncryptAndSignAtTime([]byte("ancient"), kr.keys[0], time.Unix(1000000000, 0))
	require.NoError(t, err)
	plain, ok, err := kr.Decrypt(string(old))
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "ancient", plain)

	// And a token "from the future" (clock skew) too: Python has no check.
	future, err := fernet.EncryptAndSignAtTime([]byte("later"), kr.keys[0], time.Now().Add(24*time.Hour))
	require.NoError(t, err)
	plain, ok, _ = kr.Decrypt(string(future))
	require.True(t, ok)
	require.Equal(t, "later", plain)
}

func TestDecryptFailuresAreNone(t *testing.T) {
	t.Parallel()
	kr := mustKeyring(t, newKey(t))
	good, err := kr.Encrypt("x")
	require.NoError(t, err)
	other := mustKeyring(t, newKey(t))
	foreign, err := other.Encrypt("x")
	require.NoError(t, err)
	invalidUTF8, err := fernet.EncryptAndSign([]byte{0xff, 0xfe}, kr.keys[0])
	require.NoError(t, err)
	for name, tok := range map[string]string{
		"empty":         "",
		"garbage":       "not a token",
		"wrong key":     foreign,
		"truncated":     good[:len(good)-4],
		"non-ASCII":     "é" + good[2:],
		"invalid UTF-8": string(invalidUTF8),
		"double legacy": base64.URLEncoding.EncodeToString([]byte(base64.URLEncoding.EncodeToString([]byte(good)))),
	} {
		plain, ok, err := kr.Decrypt(tok)
		require.NoError(t, err, name)
		require.False(t, ok, name)
		require.Empty(t, plain, name)
	}
}

func TestLegacyDoubleBase64(t *testing.T) {
	t.Parallel()
	kr := mustKeyring(t, newKey(t))
	tok, err := kr.Encrypt("legacy")
	require.NoError(t, err)
	plain, ok, err := kr.Decrypt(base64.URLEncoding.EncodeToString([]byte(tok)))
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "legacy", plain)
	require.False(t, kr.IsCurrent(base64.URLEncoding.EncodeToString([]byte(tok))), "rotation rewrites legacy tokens")
}

func TestKeyringRotationOrder(t *testing.T) {
	t.Parallel()
	oldKey, newK := newKey(t), newKey(t)
	oldRing := mustKeyring(t, oldKey)
	tok, err := oldRing.Encrypt("v")
	require.NoError(t, err)

	both := mustKeyring(t, newK, oldKey)
	plain, ok, _ := both.Decrypt(tok)
	require.True(t, ok, "every key decrypts")
	require.Equal(t, "v", plain)
	require.False(t, both.IsCurrent(tok))

	fresh, err := both.Encrypt("v")
	require.NoError(t, err)
	require.True(t, both.IsCurrent(fresh), "the first key encrypts")
	_, ok, _ = oldRing.Decrypt(fresh)
	require.False(t, ok)
}

func TestKeyringFromEnv(t *testing.T) {
	t.Parallel()
	k1, k2 := newKey(t), newKey(t)
	cases := []struct {
		name    string
		env     map[string]string
		wantErr string
		first   string
		n       int
	}{
		{name: "none", env: map[string]string{}, wantErr: "encryption key not configured"},
		{name: "empty", env: map[string]string{EnvEncryptionKey: ""}, wantErr: "encryption key not configured"},
		{name: "single", env: map[string]string{EnvEncryptionKey: k1}, first: k1, n: 1},
		{name: "list", env: map[string]string{EnvEncryptionKeys: k2 + ", " + k1}, first: k2, n: 2},
		{name: "list plus single", env: map[string]string{EnvEncryptionKeys: k2, EnvEncryptionKey: k1}, first: k2, n: 2},
		{name: "single already listed", env: map[string]string{EnvEncryptionKeys: k2 + "," + k1, EnvEncryptionKey: k1}, first: k2, n: 2},
		{name: "invalid single", env: map[string]string{EnvEncryptionKey: "c2hvcnQ="}, wantErr: "Invalid encryption key in IMBI_AUTH_ENCRYPTION_KEY"},
		{name: "invalid in list", env: map[string]string{EnvEncryptionKeys: k1 + ",nope-secret-material"}, wantErr: "IMBI_AUTH_ENCRYPTION_KEYS[2]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			kr, err := KeyringFromEnv(func(k string) string { return c.env[k] })
			if c.wantErr != "" {
				require.ErrorContains(t, err, c.wantErr)
				require.NotContains(t, err.Error(), "nope-secret-material", "no key material in errors")
				return
			}
			require.NoError(t, err)
			require.Len(t, kr.keys, c.n)
			require.Equal(t, c.first, kr.keys[0].Encode())
		})
	}
}

// A Go-made token has Python's shape: version 0x80, urlsafe base64 with
// padding. (Python decrypting Go tokens is checked live in
// TestInteropGoPatchReadByPython.)
func TestEncryptTokenShape(t *testing.T) {
	t.Parallel()
	kr := mustKeyring(t, newKey(t))
	tok, err := kr.Encrypt("x")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(tok, "gAAAAA"))
	raw, err := base64.URLEncoding.DecodeString(tok)
	require.NoError(t, err)
	require.Equal(t, byte(0x80), raw[0])
}

func BenchmarkDecrypt(b *testing.B) {
	kr := mustKeyring(b, newKey(b))
	tok, err := kr.Encrypt(`{"token": "secret-value"}`)
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok, _ := kr.Decrypt(tok); !ok {
			b.Fatal("decrypt failed")
		}
	}
}
