package cli

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"
)

// termSafe makes a message-derived value safe to print on a terminal:
// control characters (C0 including tab, CR and LF, DEL, C1), Unicode
// bidirectional controls and bytes that are not UTF-8 are written as
// visible escapes (\x1b, \r, \u009b, \u202e, \xff), so a dead letter's
// handler, error, headers or body cannot move the cursor, clear the
// screen, set the clipboard (OSC 52) or reorder what the operator reads.
// JSON output needs none of this: the encoder escapes control characters.
func termSafe(s string) string {
	if isTermSafe(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// termSafeLines is termSafe for multi-line text: each line is made safe
// on its own and the line breaks are kept.
func termSafeLines(s string) []string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = termSafe(l)
	}
	return lines
}

func isTermSafe(s string) bool {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || r < 0x20 || r == 0x7f || unsafeRune(r) {
			return false
		}
		i += size
	}
	return true
}

// unsafeRune: C1 controls (a terminal may read U+009B as CSI) and the
// bidirectional formatting characters.
func unsafeRune(r rune) bool {
	return (r >= 0x80 && r <= 0x9f) || r == 0x061c || r == 0x200e || r == 0x200f ||
		(r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069)
}

// jsonTermSafe escapes the C1 and bidi characters encoding/json leaves raw
// as \uXXXX. Outside strings JSON is ASCII, so each one is inside a string
// and its escape decodes to the same text.
func jsonTermSafe(b []byte) []byte {
	if !bytes.ContainsFunc(b, unsafeRune) {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if unsafeRune(r) {
			out = fmt.Appendf(out, `\u%04x`, r)
		} else {
			out = append(out, b[i:i+size]...)
		}
		i += size
	}
	return out
}
