package gatewayactions

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/aweber-imbi/imbi-worker/plugins"
)

// go test -run '^$' -bench . -benchtime 2s ./internal/actions/gatewayactions/

func benchDoc(b *testing.B) map[string]any {
	var payload map[string]any
	if err := json.Unmarshal([]byte(githubDeploymentStatus), &payload); err != nil {
		b.Fatal(err)
	}
	doc := testEventDoc()
	doc["payload"] = payload
	return doc
}

// A rule's expression once compiled: the per-event cost.
func BenchmarkCELEvalCached(b *testing.B) {
	e, err := newCELEngine(0, 0)
	if err != nil {
		b.Fatal(err)
	}
	vars := celVars(benchDoc(b))
	ctx := context.Background()
	for b.Loop() {
		if _, _, err := e.Eval(ctx, "substring(payload.deployment.sha, 0, 7)", vars); err != nil {
			b.Fatal(err)
		}
	}
}

// What the cache saves: parse + plan of the same expression.
func BenchmarkCELCompile(b *testing.B) {
	e, err := newCELEngine(0, 0)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := e.compile("payload.deployment.ref.matches('^v[0-9.]+$') ? payload.deployment.ref : null"); err != nil {
			b.Fatal(err)
		}
	}
}

// The worst one expression can cost a worker: run to the cost limit.
func BenchmarkCELCostLimitWorstCase(b *testing.B) {
	e, err := newCELEngine(0, 0)
	if err != nil {
		b.Fatal(err)
	}
	vars := celVars(benchDoc(b))
	hostile := "[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, " +
		"[1,2,3,4,5,6,7,8,9,10].all(d, [1,2,3,4,5,6,7,8,9,10].all(f, [1,2,3,4,5,6,7,8,9,10].all(g, a+b+c+d+f+g > 0))))))"
	for b.Loop() {
		if _, _, err := e.Eval(context.Background(), hostile, vars); err == nil {
			b.Fatal("want the cost limit")
		}
	}
}

// One add_deployment_event (decode excluded): selectors, two CEL
// expressions, GET + POST to a loopback imbi-api over a reused connection.
func BenchmarkAddDeploymentEvent(b *testing.B) {
	bd := setup(b, withoutLogs())
	desc := bd.actions[ActionAddDeploymentEvent]
	cfg, err := desc.DecodeConfig(json.RawMessage(deploymentEventConfig))
	if err != nil {
		b.Fatal(err)
	}
	inv := benchInvocation(b, cfg)
	ctx := context.Background()
	for b.Loop() {
		if err := desc.Run(ctx, inv); err != nil {
			b.Fatal(err)
		}
	}
}

func benchInvocation(b *testing.B, cfg any) plugins.Invocation {
	var payload map[string]any
	if err := json.Unmarshal([]byte(statusBody), &payload); err != nil {
		b.Fatal(err)
	}
	return plugins.Invocation{
		Context: plugins.PluginContext{OrgSlug: "org", ProjectID: "proj"},
		Config:  cfg,
		Event:   plugins.Event{Type: "deployment_status", Payload: payload},
	}
}
