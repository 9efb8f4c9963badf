package plugins_test

import (
	"encoding/json"
	"errors"
	"os"
	"sort"
	"testing"

	"github.com/aweber-imbi/imbi-worker/plugins"
)

// FuzzDecodeModels: manifests, contexts and plugin results arrive as JSON
// from outside (Python hosts, plugins, fixtures). Decoding must never
// panic, and whatever decodes must encode to a document that decodes to
// the same encoding again (encode∘decode is idempotent), so a value
// survives any number of Go↔Python hops unchanged.
func FuzzDecodeModels(f *testing.F) {
	names := make([]string, 0, len(modelCodecs))
	for n := range modelCodecs {
		names = append(names, n)
	}
	sort.Strings(names)
	index := map[string]uint8{}
	for i, n := range names {
		index[n] = uint8(i)
	}
	// Seeds: every Python-made fixture, valid and invalid.
	for _, file := range []string{"valid.json", "invalid.json"} {
		raw, err := os.ReadFile(pythonDir + "/" + file)
		if err != nil {
			f.Fatal(err)
		}
		var rows []struct {
			Model string          `json:"model"`
			Input json.RawMessage `json:"input"`
		}
		if err := json.Unmarshal(raw, &rows); err != nil {
			f.Fatal(err)
		}
		for _, r := range rows {
			f.Add(index[r.Model], []byte(r.Input))
		}
	}
	f.Add(index["PluginManifest"], []byte(`{"slug":"s","name":"n","plugin_type":"logs","api_version":"1e3"}`))
	f.Add(index["LogEntry"], []byte(`{"timestamp":-1e30,"message":"m","x":[{}]}`))
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		name := names[int(which)%len(names)]
		dec := modelCodecs[name]
		v, err := dec(data)
		if err != nil {
			var ve *plugins.ValidationError
			if !asValidation(err, &ve) {
				// encoding/json rejects invalid JSON before UnmarshalJSON.
				var se *json.SyntaxError
				if !asSyntax(err, &se) {
					t.Fatalf("%s: error %T %v is neither a ValidationError nor a SyntaxError", name, err, err)
				}
			}
			return
		}
		first, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("%s: decoded value does not encode: %v", name, err)
		}
		again, err := dec(first)
		if err != nil {
			t.Fatalf("%s: own encoding %s does not decode: %v", name, first, err)
		}
		second, err := json.Marshal(again)
		if err != nil {
			t.Fatal(err)
		}
		if string(first) != string(second) {
			t.Fatalf("%s: encoding not stable:\n%s\n%s", name, first, second)
		}
	})
}

func asValidation(err error, target **plugins.ValidationError) bool { return errors.As(err, target) }
func asSyntax(err error, target **json.SyntaxError) bool            { return errors.As(err, target) }
