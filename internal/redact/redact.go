// Package redact is the worker's one redaction implementation (decisions
// 0005 §5 and 0006): header values, JSON bodies, opaque bytes and free
// error text. The stored dead letter, `dlq show`, logs and error texts all
// call it, so what counts as a secret is decided in one place: the names of
// testdata/schemas/sensitive-headers.json (wire.IsSensitiveName, headers
// and body keys alike) and `Bearer …` / `Basic …` credentials.
package redact

import (
	"regexp"
	"strings"

	"github.com/aweber-imbi/imbi-worker/wire"
)

// Replacement is what a redacted value becomes.
const Replacement = wire.Redacted

// Header reports whether a NATS/HTTP header's value must be redacted: a
// sensitive name, also as a binary-mode CloudEvent extension header
// (ce-authorization).
func Header(name string) bool {
	if wire.IsSensitiveName(name) {
		return true
	}
	rest, ok := strings.CutPrefix(strings.ToLower(name), wire.CEHeaderPrefix)
	return ok && wire.IsSensitiveName(rest)
}

// Headers returns a copy of h with the values of sensitive headers
// (Header) replaced.
func Headers(h map[string][]string) map[string][]string {
	out := make(map[string][]string, len(h))
	for k, vs := range h {
		c := append([]string(nil), vs...)
		if Header(k) {
			for i := range c {
				c[i] = Replacement
			}
		}
		out[k] = c
	}
	return out
}

// Text patterns: auth schemes anywhere, and key=value / key: value pairs
// (also "key": "value") with secret-sounding keys.
var (
	authScheme = regexp.MustCompile(`(?i)\b(bearer|basic)((?:\s+(?:bearer|basic)\b)*\s+)((?:[^\s"'\\,;&]|\\.)+)`)
	secretPair = regexp.MustCompile(`(?i)\b(authorization|cookie|set-cookie|password|passwd|secret|client[_-]?secret|token|api[_-]?key|access[_-]?token|refresh[_-]?token|id[_-]?token|private[_-]?key|private[_-]?token|auth[_-]?token)(["']?\s*[:=]\s*["']?)((?:[^\s"'\\,;&]|\\.)+)`)
)

// minSecretLen: known secret values shorter than this are not replaced
// verbatim (replacing "1" or "on" everywhere would garble the text).
const minSecretLen = 4

// Text redacts free text (an error message): the given secret values
// (a plugin's credentials, may be nil) verbatim, auth schemes and
// secret-looking key/value pairs. It does not bound the length.
func Text(s string, secrets map[string]string) string {
	for _, v := range secrets {
		if len(v) >= minSecretLen {
			s = strings.ReplaceAll(s, v, Replacement)
		}
	}
	s = authScheme.ReplaceAllString(s, "${1}${2}"+Replacement)
	return secretPair.ReplaceAllString(s, "${1}${2}"+Replacement)
}

// Key reports whether a log attribute or map key names something whose
// value must never be logged: a sensitive name, or a key that looks like a
// secret (the net under the worker's own care, so it errs towards hiding).
func Key(key string) bool {
	if Header(key) {
		return true
	}
	k := strings.ToLower(key)
	for _, part := range secretKeyParts {
		if strings.Contains(k, part) {
			return true
		}
	}
	return false
}

var secretKeyParts = [...]string{
	"authorization", "cookie", "token", "password", "passwd", "secret",
	"credential", "api_key", "apikey", "api-key", "private_key", "signature",
	"identity",
}
