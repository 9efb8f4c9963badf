package plugins_test

import (
	"encoding/json"
	"testing"

	"github.com/aweber-imbi/imbi-worker/plugins"
)

// BenchmarkPluginContextMarshal: the publisher side builds one context per
// event (cli publish, the Python gateway's Go counterpart in tests).
func BenchmarkPluginContextMarshal(b *testing.B) {
	team := "payments"
	c := plugins.PluginContext{ProjectID: "p-1", ProjectSlug: "checkout", OrgSlug: "acme", TeamSlug: &team,
		AssignmentOptions: map[string]any{"service_slug": "github"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(c); err != nil {
			b.Fatal(err)
		}
	}
}
