package httprequest

import (
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/aweber-imbi/imbi-worker/plugins"
)

// redacted replaces a secret in text that goes into an error.
const redacted = "[redacted]"

// authSchemeToken matches an HTTP auth scheme and its credential (Bearer
// or Basic, any case, after optional "Authorization:"), as an endpoint
// echoing request headers would print it.
var authSchemeToken = regexp.MustCompile(`(?i)\b(bearer|basic)(\s+)[A-Za-z0-9\-._~+/=:%]+`)

// excerpt makes response text safe to quote in an error: it replaces the
// action's credential values and any Bearer/Basic credential by
// [redacted], drops control characters (a response cannot forge log lines
// or headers) and cuts the result to maxErrorExcerpt bytes.
func excerpt(raw []byte, creds plugins.Credentials) string {
	s := strings.ToValidUTF8(string(raw), "\uFFFD")
	s = scrub(s, creds)
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n', r == '\t', r == '\r':
			return ' '
		case unicode.IsControl(r), r == '\u2028', r == '\u2029':
			return -1
		}
		return r
	}, s)
	return shorten(strings.Join(strings.Fields(s), " "))
}

// scrub replaces every credential value (longest first, so one value that
// contains another is removed whole) and Bearer/Basic credentials.
func scrub(s string, creds plugins.Credentials) string {
	vals := make([]string, 0, len(creds))
	for _, v := range creds {
		if v != "" {
			vals = append(vals, v)
		}
	}
	slices.SortFunc(vals, func(a, b string) int { return len(b) - len(a) })
	for _, v := range vals {
		s = strings.ReplaceAll(s, v, redacted)
	}
	return authSchemeToken.ReplaceAllString(s, "${1}${2}"+redacted)
}

// shorten cuts s to at most maxErrorExcerpt bytes on a rune boundary,
// marking the cut with "…" (within the bound).
func shorten(s string) string {
	s = strings.TrimSpace(s)
	if len(s) <= maxErrorExcerpt {
		return s
	}
	cut := maxErrorExcerpt - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
