// Package donemarker is the worker's idempotency guard (wire-contract §6):
// the done-marker key of a CloudEvent id (Key), the batched lookups that
// ask whether a message already ran (Checker), and the writer that stores a
// marker before the message is acked, retrying until the server has it
// (Writer). It knows JetStream, not the worker: a message waiting for its
// marker is a Job.
package donemarker

import (
	"crypto/sha256"
	"encoding/hex"
)

// Key is the done-marker key of a CloudEvent id: the id itself when it is
// a valid KV key of at most 200 bytes (readable), else "sha256.<hex>".
func Key(ceID string) string {
	if len(ceID) <= 200 && isKVKey(ceID) {
		return ceID
	}
	return "sha256." + sha256Hex(ceID)
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// isKVKey reports whether s is a valid JetStream KV key: dot-separated
// tokens of [-/_=a-zA-Z0-9], none empty — the pattern
// ^[-/_=a-zA-Z0-9]+(\.[-/_=a-zA-Z0-9]+)*$ checked by hand, because the
// regexp ran twice per message with idempotency on (lookup and marker
// write). TestIsKVKeyMatchesPattern and FuzzIsKVKey hold it to the
// pattern.
func isKVKey(s string) bool {
	if s == "" {
		return false
	}
	tokenLen := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if tokenLen == 0 {
				return false
			}
			tokenLen = 0
			continue
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '/', c == '_', c == '=':
		default:
			return false
		}
		tokenLen++
	}
	return tokenLen > 0
}
