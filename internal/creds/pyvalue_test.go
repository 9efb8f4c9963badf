package creds

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// Python's str(), truthiness and key order, checked against the values
// Python itself computed in gen_fixtures.py.
func TestPythonStrMatchesFixtures(t *testing.T) {
	t.Parallel()
	fx := loadFixtures(t)
	kr := mustKeyring(t, fx.Key)
	for _, c := range fx.Configs {
		plain, ok, err := kr.Decrypt(c.Token)
		require.NoError(t, err)
		if !ok || c.Credentials == nil || plain == "" {
			continue
		}
		o, err := decodeObject([]byte(plain))
		if err != nil {
			continue // not JSON: covered by the store tests
		}
		t.Run(c.Name, func(t *testing.T) {
			got := map[string]string{}
			for _, k := range o.keys {
				if v := o.values[k]; v != nil {
					got[k] = pyStr(v)
				}
			}
			require.Equal(t, c.Credentials, got)
			require.Equal(t, c.Keys, truthyKeys(o))
		})
	}
}

func TestPyStr(t *testing.T) {
	t.Parallel()
	cases := []struct{ json, want string }{
		{`"plain"`, "plain"},
		{`true`, "True"},
		{`false`, "False"},
		{`0`, "0"},
		{`-0`, "0"},
		{`-0.0`, "-0.0"},
		{`1.5`, "1.5"},
		{`1e3`, "1000.0"},
		{`1E400`, "inf"},
		{`-1e400`, "-inf"},
		{`0.1`, "0.1"},
		{`123456789.125`, "123456789.125"},
		{`9999999999999998`, "9999999999999998"},
		{`9999999999999998.0`, "9999999999999998.0"},
		{`1e16`, "1e+16"},
		{`1.5e-5`, "1.5e-05"},
		{`1e-4`, "0.0001"},
		{`2.5e100`, "2.5e+100"},
		{`{"x": 1}`, "{'x': 1}"},
		{`[1, "a", null, true, {}]`, "[1, 'a', None, True, {}]"},
		{`["it's"]`, `["it's"]`},
		{`["it's \"q\""]`, `['it\'s "q"']`},
		{`["\u0000\u001f\u007f\u0080\u00a0\u00ad\u200b\ud834\udd1e"]`, `['\x00\x1f\x7f\x80\xa0\xad\u200b𝄞']`},
		{`{"ключ": "é"}`, `{'ключ': 'é'}`},
	}
	for _, c := range cases {
		v, err := decodeJSON([]byte(c.json))
		require.NoError(t, err, c.json)
		require.Equal(t, c.want, pyStr(v), c.json)
	}
}

func TestTruthy(t *testing.T) {
	t.Parallel()
	for js, want := range map[string]bool{
		`null`: false, `""`: false, `0`: false, `0.0`: false, `-0.0`: false, `false`: false,
		`[]`: false, `{}`: false, `"0"`: true, `" "`: true, `1`: true, `1e-300`: true,
		`1e400`: true, `true`: true, `[0]`: true, `{"a": null}`: true,
	} {
		v, err := decodeJSON([]byte(js))
		require.NoError(t, err, js)
		require.Equal(t, want, truthy(v), js)
	}
}

// json.dumps defaults: ", " / ": " separators, \uXXXX for non-ASCII
// (surrogate pairs above the BMP), key order kept.
func TestEncodeJSONLikePython(t *testing.T) {
	t.Parallel()
	o := newObject()
	o.set("zeta", "z")
	o.set("alpha", "é😀\n\"\\\x7f")
	o.set("n", json.Number("1.50"))
	o.set("zeta", "replaced")
	require.Equal(t, `{"zeta": "replaced", "alpha": "\u00e9\ud83d\ude00\n\"\\\u007f", "n": 1.50}`, string(encodeJSON(o)))
	back, err := decodeObject(encodeJSON(o))
	require.NoError(t, err)
	require.Equal(t, o.keys, back.keys)
	require.Equal(t, "é😀\n\"\\\x7f", back.values["alpha"])
}

func TestDecodeJSONKeepsOrderAndLastDuplicate(t *testing.T) {
	t.Parallel()
	o, err := decodeObject([]byte(`{"b": 1, "a": 2, "b": 3}`))
	require.NoError(t, err)
	require.Equal(t, []string{"b", "a"}, o.keys)
	require.Equal(t, json.Number("3"), o.values["b"])
	o.delete("b")
	o.delete("missing")
	require.Equal(t, []string{"a"}, o.keys)

	for _, bad := range []string{``, `{`, `{"a": }`, `{"a": 1} x`, `NaN`, `[1,]`} {
		_, err := decodeJSON([]byte(bad))
		require.Error(t, err, bad)
	}
	_, err = decodeObject([]byte(`[1]`))
	require.ErrorIs(t, err, errNotObject)
}

// FuzzDecodeCredentialJSON: the decrypted blob is outside input. Decoding
// never panics, and a decoded object survives encode → decode unchanged.
func FuzzDecodeCredentialJSON(f *testing.F) {
	for _, s := range []string{`{"token": "x"}`, `{"a": [1, {"b": null}], "c": 1e400}`, `[1]`, `"s"`, `{"é": "\ud83d\ude00"}`, `{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := decodeJSON(data)
		if err != nil {
			return
		}
		_ = pyStr(v)
		_ = truthy(v)
		o, ok := v.(*object)
		if !ok {
			return
		}
		again, err := decodeObject(encodeJSON(o))
		if err != nil {
			t.Fatalf("re-decode of our own encoding failed: %v", err)
		}
		if pyStr(again) != pyStr(o) {
			t.Fatalf("round trip changed the value: %q vs %q", pyStr(again), pyStr(o))
		}
	})
}

// FuzzDecrypt: tokens come from the database. Decrypt never panics or
// errors with a valid keyring.
func FuzzDecrypt(f *testing.F) {
	fx := loadFixtures(f)
	for _, c := range fx.Configs {
		f.Add(c.Token)
	}
	kr := mustKeyring(f, fx.Key)
	f.Fuzz(func(t *testing.T, tok string) {
		if _, _, err := kr.Decrypt(tok); err != nil {
			t.Fatalf("Decrypt returned an error: %v", err)
		}
	})
}
