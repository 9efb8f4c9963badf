package dispatch

import (
	"unicode/utf8"

	"github.com/aweber-imbi/imbi-worker/internal/redact"
	"github.com/aweber-imbi/imbi-worker/plugins"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// RedactError renders err for logs and dead letters: credential values
// and anything that looks like a token replaced by "[redacted]", then cut
// to wire.DLQErrorMaxBytes on a UTF-8 boundary.
func RedactError(err error, creds plugins.Credentials) string {
	if err == nil {
		return ""
	}
	return RedactText(err.Error(), creds)
}

// RedactText is RedactError for a string (internal/redact.Text, then
// bounded).
func RedactText(s string, creds plugins.Credentials) string {
	return Truncate(redact.Text(s, creds), wire.DLQErrorMaxBytes)
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
