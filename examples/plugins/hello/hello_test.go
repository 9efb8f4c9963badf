package hello_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	hello "example.com/imbi-hello"
	"github.com/aweber-imbi/imbi-worker/plugins"
)

func greetAction(t *testing.T) plugins.ActionDescriptor {
	t.Helper()
	acts, err := hello.Plugin{}.Actions()
	if err != nil || len(acts) != 1 {
		t.Fatalf("Actions() = %v, %v", acts, err)
	}
	return acts[0]
}

func TestGreetConfigValidation(t *testing.T) {
	greet := greetAction(t)
	tests := []struct {
		name    string
		config  string
		wantErr bool
	}{
		{"name_only", `{"name":"Imbi"}`, false},
		{"with_greeting", `{"name":"Imbi","greeting":"Hi"}`, false},
		{"stored_as_json_string", `"{\"name\":\"Imbi\"}"`, false},
		{"missing_name", `{"greeting":"Hi"}`, true},
		{"empty_name", `{"name":""}`, true},
		{"wrong_type", `{"name":5}`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := greet.DecodeConfig(json.RawMessage(tc.config))
			var cfgErr *plugins.ConfigError
			if tc.wantErr != errors.As(err, &cfgErr) {
				t.Fatalf("DecodeConfig(%s) error = %v, want error %v", tc.config, err, tc.wantErr)
			}
		})
	}
}

func TestGreetRuns(t *testing.T) {
	greet := greetAction(t)
	run := func(config string) error {
		cfg, err := greet.DecodeConfig(json.RawMessage(config))
		if err != nil {
			t.Fatal(err)
		}
		return greet.Run(context.Background(), plugins.Invocation{Config: cfg})
	}
	if err := run(`{"name":"Imbi"}`); err != nil {
		t.Fatalf("greet: %v", err)
	}
	var perm *plugins.PermanentError
	if err := run(`{"name":"nobody"}`); !errors.As(err, &perm) {
		t.Fatalf("greet nobody: %v, want a permanent error", err)
	}
}
