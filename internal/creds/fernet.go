package creds

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/fernet/fernet-go"
)

// Environment variables that hold the Fernet keys (plugins-spec §10.3).
const (
	// EnvEncryptionKey is Python's setting: one urlsafe-base64 32-byte key.
	EnvEncryptionKey = "IMBI_AUTH_ENCRYPTION_KEY"
	// EnvEncryptionKeys is the worker's addition for rotation: a
	// comma-separated list; the first key encrypts, every key decrypts.
	EnvEncryptionKeys = "IMBI_AUTH_ENCRYPTION_KEYS"
)

// ErrKeyNotConfigured: neither key variable is set (or both are empty).
// Unlike Python the worker never invents a random key: data written under
// one would be unreadable by every other process (docs/decisions/).
var ErrKeyNotConfigured = errors.New("encryption key not configured: set " + EnvEncryptionKey + " (or " + EnvEncryptionKeys + ")")

// InvalidKeyError names which configured key is malformed, never its value.
type InvalidKeyError struct {
	Source string // the variable, e.g. IMBI_AUTH_ENCRYPTION_KEYS[2]
}

func (e *InvalidKeyError) Error() string {
	return fmt.Sprintf("Invalid encryption key in %s: want urlsafe base64 of 32 bytes", e.Source)
}

// Cipher encrypts and decrypts secrets. Keyring implements it; tests
// substitute one whose Decrypt fails to reach Python's "decrypt raised"
// branches.
type Cipher interface {
	Encrypt(plaintext string) (string, error)
	// Decrypt models Python's TokenEncryption.decrypt: ok=false with a nil
	// error is Python's None (invalid token, wrong key, not base64); a
	// non-nil error is Python's raise.
	Decrypt(token string) (plaintext string, ok bool, err error)
}

// Keyring is the set of Fernet keys: keys[0] encrypts, all decrypt.
type Keyring struct {
	keys []*fernet.Key
}

// NewKeyring parses encoded keys; the first one is the encrypting key.
// Error texts name the position, never the key material.
func NewKeyring(encoded ...string) (*Keyring, error) {
	if len(encoded) == 0 {
		return nil, ErrKeyNotConfigured
	}
	kr := &Keyring{}
	for i, s := range encoded {
		k, err := fernet.DecodeKey(strings.TrimSpace(s))
		if err != nil {
			return nil, &InvalidKeyError{Source: fmt.Sprintf("key %d", i+1)}
		}
		kr.keys = append(kr.keys, k)
	}
	return kr, nil
}

// KeyringFromEnv builds the keyring from IMBI_AUTH_ENCRYPTION_KEYS (first
// encrypts) and IMBI_AUTH_ENCRYPTION_KEY. With both set, the single key is
// added for decryption when the list lacks it, so an operator can start a
// rotation by setting KEYS=new,old and leave the old variable alone.
// getenv is os.Getenv in production.
func KeyringFromEnv(getenv func(string) string) (*Keyring, error) {
	var encoded, sources []string
	if list := strings.TrimSpace(getenv(EnvEncryptionKeys)); list != "" {
		for i, s := range strings.Split(list, ",") {
			if s = strings.TrimSpace(s); s != "" {
				encoded = append(encoded, s)
				sources = append(sources, fmt.Sprintf("%s[%d]", EnvEncryptionKeys, i+1))
			}
		}
	}
	if single := strings.TrimSpace(getenv(EnvEncryptionKey)); single != "" {
		listed := false
		for _, s := range encoded {
			listed = listed || s == single
		}
		if !listed {
			encoded = append(encoded, single)
			sources = append(sources, EnvEncryptionKey)
		}
	}
	if len(encoded) == 0 {
		return nil, ErrKeyNotConfigured
	}
	kr := &Keyring{}
	for i, s := range encoded {
		k, err := fernet.DecodeKey(s)
		if err != nil {
			return nil, &InvalidKeyError{Source: sources[i]}
		}
		kr.keys = append(kr.keys, k)
	}
	return kr, nil
}

// Encrypt returns a Fernet token (urlsafe base64 with padding) under the
// first key.
func (kr *Keyring) Encrypt(plaintext string) (string, error) {
	tok, err := fernet.EncryptAndSign([]byte(plaintext), kr.keys[0])
	if err != nil {
		return "", fmt.Errorf("fernet encrypt: %w", err)
	}
	return string(tok), nil
}

// Decrypt tries every key with no TTL (fernet-go skips the age and clock
// skew checks when ttl <= 0; TestDecryptHasNoTTL pins it), then Python's
// legacy fallback: the token base64-encoded once more. A plaintext that is
// not UTF-8 is None too, as Python's UnicodeDecodeError branch returns None.
// It never returns an error: every failure a valid keyring can meet is
// Python's None; the error result is for Ciphers that can fail otherwise.
func (kr *Keyring) Decrypt(token string) (string, bool, error) {
	if msg, ok := kr.open(token, kr.keys); ok {
		return msg, true, nil
	}
	if inner, err := base64.URLEncoding.DecodeString(token); err == nil {
		if msg, ok := kr.open(string(inner), kr.keys); ok {
			return msg, true, nil
		}
	}
	return "", false, nil
}

// IsCurrent reports whether token decrypts under the encrypting key as a
// plain (not legacy double-encoded) token: rotation leaves such values alone.
func (kr *Keyring) IsCurrent(token string) bool {
	_, ok := kr.open(token, kr.keys[:1])
	return ok
}

func (kr *Keyring) open(token string, keys []*fernet.Key) (string, bool) {
	for i := 0; i < len(token); i++ {
		if token[i] >= utf8.RuneSelf { // Python: ciphertext.encode('ascii') fails → None
			return "", false
		}
	}
	msg := fernet.VerifyAndDecrypt([]byte(token), 0, keys)
	if msg == nil || !utf8.Valid(msg) {
		return "", false
	}
	return string(msg), true
}

// GenerateKey returns a new random Fernet key, urlsafe base64 of 32 bytes
// (for `creds rotate` documentation and tests; the worker never invents one).
func GenerateKey() (string, error) {
	var k fernet.Key
	if err := k.Generate(); err != nil {
		return "", err
	}
	return k.Encode(), nil
}

func encodeKey(raw []byte) string { return base64.URLEncoding.EncodeToString(raw) }
