package plugins_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/aweber-imbi/imbi-worker/plugins"
)

type fuzzConfig struct {
	Name    string            `json:"name" jsonschema:"minLength=1"`
	Count   int               `json:"count,omitempty" jsonschema:"minimum=0"`
	Pointer string            `json:"pointer,omitempty" jsonschema:"format=json-pointer"`
	Labels  map[string]string `json:"labels,omitempty"`
	Tags    []string          `json:"tags,omitempty"`
}

// FuzzDecodeConfig: handler_config is typed by operators into rules and
// arrives on the wire, possibly as a JSON string holding the document.
// DecodeConfig must never panic, must fail only with *ConfigError, and a
// value it accepts must be the typed config and satisfy the schema's
// constraints.
func FuzzDecodeConfig(f *testing.F) {
	d := plugins.MustAction("fuzz", "Fuzz", func(context.Context, plugins.ActionInput[fuzzConfig]) error { return nil })
	for _, seed := range []string{
		`{"name":"a"}`, `{"name":"a","count":3,"pointer":"/payload/x","labels":{"k":"v"},"tags":["t"]}`,
		`"{\"name\":\"a\"}"`, `null`, ``, `{}`, `[]`, `"not json"`, `{"name":""}`, `{"name":"a","count":-1}`,
		`{"name":"a","pointer":"no-slash"}`, `{"name":"a","count":1.5}`, `{"name":"a","count":1e400}`,
		`{"name":"a","extra":{"deep":[1,2,{"x":null}]}}`, `"\"nested string\""`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		v, err := d.DecodeConfig(json.RawMessage(raw))
		if err != nil {
			var ce *plugins.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error %T %v is not a *ConfigError", err, err)
			}
			return
		}
		cfg, ok := v.(fuzzConfig)
		if !ok {
			t.Fatalf("decoded %T, want fuzzConfig", v)
		}
		if cfg.Name == "" || cfg.Count < 0 {
			t.Fatalf("accepted a config the schema forbids: %+v from %q", cfg, raw)
		}
	})
}
