package wire_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/aweber-imbi/imbi-worker/wire"
)

// canonicalHandler is the gateway's handler regex (plugins-spec §6.2),
// restated here so the fuzz target checks ParseHandler against the spec
// rather than against itself.
var canonicalHandler = regexp.MustCompile(`^[a-z][a-z0-9-]*#[a-z][a-z0-9_]*$`)

// FuzzParseHandler: handler strings come from rules that operators type and
// from messages on the wire, so ParseHandler must never panic and must only
// accept handlers whose parts are safe NATS subject tokens (the worker
// builds imbi.actions.<plugin>.<action> from them).
func FuzzParseHandler(f *testing.F) {
	for _, seed := range []string{
		"github#create_issue", "github:create_issue", "gateway-actions#update_project",
		"", "#", ":", "a#", "#a", "a#b#c", "a:b:c", "a:b#c", "A#b", "a#B", "a-#b_",
		"1a#b", "a#1b", "a.b#c", "a#b.c", "a*#>", "a#b ", " a#b", "a#b\n", "ä#b",
		"a#b\x00", strings.Repeat("a", 300) + "#b",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := wire.ParseHandler(s)
		if err != nil {
			var invalid *wire.InvalidHandlerError
			if !errors.As(err, &invalid) {
				t.Fatalf("ParseHandler(%q) error %T is not *InvalidHandlerError", s, err)
			}
			if invalid.Value != s {
				t.Fatalf("InvalidHandlerError.Value = %q, want the input %q", invalid.Value, s)
			}
			return
		}
		canonical := h.String()
		if !canonicalHandler.MatchString(canonical) {
			t.Fatalf("ParseHandler(%q) accepted %q, which does not match the spec regex", s, canonical)
		}
		// Only the legacy ':' separator may be rewritten; nothing else changes.
		if want := strings.Replace(s, ":", "#", 1); canonical != s && canonical != want {
			t.Fatalf("ParseHandler(%q) = %q: more than the legacy separator changed", s, canonical)
		}
		for _, token := range []string{h.Plugin, h.Action} {
			if token == "" || strings.ContainsAny(token, ".*> \t\r\n") {
				t.Fatalf("ParseHandler(%q) part %q is not a NATS subject token", s, token)
			}
		}
		again, err := wire.ParseHandler(canonical)
		if err != nil || again != h {
			t.Fatalf("re-parsing %q = %+v, %v; want %+v", canonical, again, err, h)
		}
	})
}
