package dispatch

import (
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/aweber-imbi/imbi-worker/plugins"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// The patterns catch credentials an error text may quote even when
// they are not in the plugin's credential map: auth schemes and
// key=value / key: value pairs with secret-sounding keys.
var (
	authSchemePattern = regexp.MustCompile(`(?i)\b(bearer|basic)(\s+)([A-Za-z0-9._~+/=-]+)`)
	secretPairPattern = regexp.MustCompile(`(?i)\b(authorization|cookie|set-cookie|password|passwd|secret|client[_-]?secret|token|api[_-]?key|access[_-]?token|refresh[_-]?token|private[_-]?key)(["']?\s*[:=]\s*["']?)([^\s"',;&]+)`)
)

// minSecretLen: credential values shorter than this are not replaced
// verbatim (replacing "1" or "on" everywhere would garble the text and
// such values are not secrets worth the name).
const minSecretLen = 4

// RedactError renders err for logs and dead letters: credential values
// and anything that looks like a token replaced by "[redacted]", then cut
// to wire.DLQErrorMaxBytes on a UTF-8 boundary.
func RedactError(err error, creds plugins.Credentials) string {
	if err == nil {
		return ""
	}
	return RedactText(err.Error(), creds)
}

// RedactText is RedactError for a string.
func RedactText(s string, creds plugins.Credentials) string {
	for _, v := range creds {
		if len(v) >= minSecretLen {
			s = strings.ReplaceAll(s, v, wire.Redacted)
		}
	}
	s = authSchemePattern.ReplaceAllString(s, "${1}${2}"+wire.Redacted)
	s = secretPairPattern.ReplaceAllString(s, "${1}${2}"+wire.Redacted)
	return Truncate(s, wire.DLQErrorMaxBytes)
}

// Truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ellipsis = "…"
	cut := n - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}
