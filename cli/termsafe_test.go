package cli

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTermSafe(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"github#create_issue", "github#create_issue"},
		{"héllo — ✓", "héllo — ✓"},
		{"\x1b]52;c;SGVsbG8=\x07", `\x1b]52;c;SGVsbG8=\x07`},
		{"\x1b[2Jcleared", `\x1b[2Jcleared`},
		{"a\rb\nc\td", `a\rb\nc\td`},
		{"\x00\x7f", `\x00\x7f`},
		{"csi\u009b2J", `csi\u009b2J`},
		{"rtl\u202eevil\u2066", `rtl\u202eevil\u2066`},
		{"bad\xffutf8\xc3", `bad\xffutf8\xc3`},
	} {
		t.Run(c.want, func(t *testing.T) {
			require.Equal(t, c.want, termSafe(c.in))
		})
	}
	require.Equal(t, []string{`a\x1b[2J`, `b\r`, ""}, termSafeLines("a\x1b[2J\nb\r\n"))
}

func TestJSONTermSafe(t *testing.T) {
	in := []byte("{\"e\": \"a\u009b2J\u202eb ✓\"}")
	out := jsonTermSafe(in)
	require.Equal(t, `{"e": "a\u009b2J\u202eb ✓"}`, string(out))
	var a, b map[string]string
	require.NoError(t, json.Unmarshal(in, &a))
	require.NoError(t, json.Unmarshal(out, &b))
	require.Equal(t, a, b, "the same JSON value")
}
