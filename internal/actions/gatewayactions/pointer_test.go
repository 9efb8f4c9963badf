package gatewayactions

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// Cases checked against python-jsonpointer 3.1.1's resolve().
func TestPointerResolve(t *testing.T) {
	t.Parallel()
	var doc any
	require.NoError(t, json.Unmarshal([]byte(`{"a": [1, 2], "b": {"": 3, "~": 4, "x/y": 5}, "s": "héllo", "n": null}`), &doc))
	tests := []struct {
		ptr     Pointer
		want    any
		wantErr string
	}{
		{ptr: "", want: doc},
		{ptr: "/a/0", want: float64(1)},
		{ptr: "/a/1", want: float64(2)},
		{ptr: "/b/", want: float64(3)},
		{ptr: "/b/~0", want: float64(4)},
		{ptr: "/b/x~1y", want: float64(5)},
		{ptr: "/s/1", want: "é"}, // Python strings are sequences
		{ptr: "/n", want: nil},
		{ptr: "/a/01", wantErr: `"01" is not a valid sequence index`},
		{ptr: "/a/-", wantErr: `"-" is not a valid sequence index`},
		{ptr: "/a/-1", wantErr: `"-1" is not a valid sequence index`},
		{ptr: "/a/+1", wantErr: `"+1" is not a valid sequence index`},
		{ptr: "/a/2", wantErr: `index "2" is out of bounds`},
		{ptr: "/a/99999999999999999999999", wantErr: "out of bounds"},
		{ptr: "/x", wantErr: `member "x" not found`},
		{ptr: "/n/x", wantErr: `cannot index null with "x"`},
		{ptr: "/a/0/x", wantErr: `cannot index a number with "x"`},
		{ptr: "a", wantErr: "must start with /"},
		{ptr: "/a~", wantErr: "invalid escape"},
		{ptr: "/a~2", wantErr: "invalid escape"},
	}
	for _, tc := range tests {
		got, err := tc.ptr.Resolve(doc)
		if tc.wantErr != "" {
			require.ErrorIs(t, err, ErrPointerNotFound, "%q", tc.ptr)
			require.ErrorContains(t, err, tc.wantErr, "%q", tc.ptr)
			require.Contains(t, err.Error(), `"`+string(tc.ptr)+`"`, "the error names the pointer")
			continue
		}
		require.NoError(t, err, "%q", tc.ptr)
		require.Equal(t, tc.want, got, "%q", tc.ptr)
	}
}

// Values rendered as the Python actions' str() renders them.
func TestPyStr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   any
		want string
	}{
		{"x", "x"},
		{nil, "None"},
		{true, "True"},
		{false, "False"},
		{float64(12345), "12345"},
		{float64(-3), "-3"},
		{1.5, "1.5"},
		{func() float64 { a, b := 0.1, 0.2; return a + b }(), "0.30000000000000004"}, // runtime, not constant, arithmetic
		{1e20, "1e+20"},
		{1e-7, "1e-07"},
		{json.Number("42"), "42"},
		{[]any{"a", float64(1)}, `["a",1]`},
		{map[string]any{"k": "v"}, `{"k":"v"}`},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, pyStr(tc.in), "%#v", tc.in)
	}
	require.Equal(t, "1.0", pyFloat(1, false), "a CEL double keeps its fraction")
	require.Equal(t, "1e+16", pyFloat(1e16, false))
	require.Equal(t, "0.0001", pyFloat(0.0001, false))
}
