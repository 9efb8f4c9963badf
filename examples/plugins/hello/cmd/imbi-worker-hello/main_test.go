package main

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/aweber-imbi/imbi-worker/cli"
)

// The custom binary lists the plugin imported by main.go: the registration
// crossed the module boundary through init.
func TestActionsListsHelloGreet(t *testing.T) {
	var out bytes.Buffer
	cmd := cli.NewRootCmd()
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"actions", "--json"})
	if err := cmd.ExecuteContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Plugins []struct {
			Slug, Kind, Package string
			Actions             []struct {
				Handler      string
				ConfigSchema struct {
					Required []string `json:"required"`
				} `json:"config_schema"`
			}
		}
		Errors map[string]string
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("actions --json is not JSON: %v\n%s", err, out.String())
	}
	if len(rep.Errors) != 0 {
		t.Fatalf("load errors: %v", rep.Errors)
	}
	slugs := map[string]bool{}
	for _, p := range rep.Plugins {
		slugs[p.Slug] = true
	}
	// builtin brings the shipped plugins along.
	for _, want := range []string{"gateway-actions", "http"} {
		if !slugs[want] {
			t.Fatalf("built-in plugin %q not listed:\n%s", want, out.String())
		}
	}
	for _, p := range rep.Plugins {
		if p.Slug != "hello" {
			continue
		}
		if p.Kind != "webhook" || p.Package != "example.com/imbi-hello" {
			t.Fatalf("hello plugin: kind %q package %q", p.Kind, p.Package)
		}
		if len(p.Actions) != 1 || p.Actions[0].Handler != "hello#greet" {
			t.Fatalf("hello actions: %+v", p.Actions)
		}
		if got := p.Actions[0].ConfigSchema.Required; len(got) != 1 || got[0] != "name" {
			t.Fatalf("greet schema required = %v, want [name]", got)
		}
		return
	}
	t.Fatalf("hello plugin not listed:\n%s", out.String())
}
