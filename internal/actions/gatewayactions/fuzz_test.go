package gatewayactions

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aweber-imbi/imbi-worker/plugins"
)

// fuzzEvalBound is how long one CEL evaluation may take under the fuzzer
// (which runs with coverage instrumentation, often under -race). The
// cost limit keeps real evaluations in the low milliseconds; this bound
// only catches an evaluation that escapes the limit.
const fuzzEvalBound = 5 * time.Second

// FuzzSelectors feeds random selectors, expressions and webhook bodies to
// the pointer walker and the CEL engine: neither may panic, a CEL
// evaluation ends within fuzzEvalBound (cost limit and interrupts), and
// every failure is one of the typed errors the actions classify.
func FuzzSelectors(f *testing.F) {
	f.Add("/payload/deployment/sha", "substring(payload.deployment.sha, 0, 7)",
		[]byte(`{"deployment": {"sha": "abcdef1234567890", "ref": "v1.2.3"}}`))
	f.Add("/payload/a/0", "payload.a.map(x, x * 2)", []byte(`{"a": [1, 2, 3]}`))
	f.Add("", "payload.ref.matches('^[0-9]+$') ? payload.ref : null", []byte(`{"ref": "123"}`))
	f.Add("/payload/s/3", "payload.s.substring(-3)", []byte(`{"s": "héllo🙂"}`))
	f.Add("/metadata/headers/x-github-event", `metadata.headers["x-github-event"] == "push"`, []byte(`{}`))
	f.Add("/payload/~0~1", "[1,2,3].all(a, [1,2,3].all(b, a + b > 0))", []byte(`{"~/": true}`))
	f.Add("/payload/n", "substring('abc', payload.n, -9223372036854775808)", []byte(`{"n": 9223372036854775807}`))
	f.Add("/a~", "type + third_party_service + attributed_to", []byte(`[]`))

	engine, err := newCELEngine(0, 64)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, ptr, expr string, body []byte) {
		var payload map[string]any
		if json.Unmarshal(body, &payload) != nil {
			payload = map[string]any{}
		}
		ev := plugins.Event{Type: "push", ThirdPartyService: "github",
			Metadata: plugins.EventMetadata{WebhookID: "wh", Headers: map[string]string{"x-github-event": "push"}},
			Payload:  payload}
		doc := ev.Document()

		if _, err := Pointer(ptr).Resolve(doc); err != nil && !errors.Is(err, ErrPointerNotFound) {
			t.Fatalf("Resolve(%q): untyped error %v", ptr, err)
		}
		_ = pyStr(payload)

		ctx, cancel := context.WithTimeout(context.Background(), fuzzEvalBound)
		defer cancel()
		start := time.Now()
		_, _, err := engine.Eval(ctx, expr, celVars(doc))
		if elapsed := time.Since(start); elapsed > fuzzEvalBound+time.Second {
			t.Fatalf("Eval(%q) took %s", expr, elapsed)
		}
		if err != nil && !isCELError(err) && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Eval(%q): untyped error %v", expr, err)
		}
	})
}

// FuzzDecodeConfig feeds random handler_config texts to every action's
// compiled schema + decode: no panic, errors are ConfigErrors, and an
// accepted config re-encodes to a text that is accepted again with the
// same value (what the rule editor shows is what the worker runs).
func FuzzDecodeConfig(f *testing.F) {
	f.Add(uint8(0), []byte(`[{"path": "/name", "from": "/payload/repo/name"}]`))
	f.Add(uint8(1), []byte(createReleaseConfig))
	f.Add(uint8(2), []byte(deploymentEventConfig))
	f.Add(uint8(3), []byte(`{"version_expression": "payload.version", "sbom_selector": ""}`))
	f.Add(uint8(1), []byte(`{"title_selector": "/a~", "committish_expression": "x", "TITLE_SELECTOR": 5}`))
	f.Add(uint8(2), []byte(`"{\"environment_selector\": \"/e\"}"`))
	f.Add(uint8(0), []byte(`null`))

	acts, err := Plugin{}.Actions()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, which uint8, raw []byte) {
		desc := acts[int(which)%len(acts)]
		cfg, err := desc.DecodeConfig(raw)
		if err != nil {
			var ce *plugins.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("%s: untyped error %v", desc.Name, err)
			}
			return
		}
		again, err := json.Marshal(cfg)
		if err != nil {
			t.Fatalf("%s: accepted config does not encode: %v", desc.Name, err)
		}
		cfg2, err := desc.DecodeConfig(again)
		if err != nil {
			t.Fatalf("%s: re-encoded config %s rejected: %v", desc.Name, again, err)
		}
		again2, _ := json.Marshal(cfg2)
		if string(again) != string(again2) {
			t.Fatalf("%s: round trip changed %s to %s", desc.Name, again, again2)
		}
	})
}

// FuzzActions runs whole actions on random configs and events against the
// local imbi-api: no panic, an answer within the action deadline, and no
// error text carrying the token.
func FuzzActions(f *testing.F) {
	f.Add(uint8(0), []byte(`[{"path": "/name", "from": "/payload/repo/name"}]`), []byte(`{"repo": {"name": "x"}}`))
	f.Add(uint8(1), []byte(createReleaseConfig), []byte(deploymentBody))
	f.Add(uint8(2), []byte(deploymentEventConfig), []byte(statusBody))
	f.Add(uint8(3), []byte(`{"version_expression": "payload.version", "sbom_selector": "/payload/sbom", "committish_expression": "payload.sha"}`),
		[]byte(`{"version": "1.0.0", "sha": "ABCDEF0123", "sbom": {"bomFormat": "CycloneDX"}}`))

	b := setup(f, withoutLogs())
	order := []string{ActionUpdateProject, ActionCreateRelease, ActionAddDeploymentEvent, ActionIngestSbom}
	f.Fuzz(func(t *testing.T, which uint8, config, body []byte) {
		desc := b.actions[order[int(which)%len(order)]]
		cfg, err := desc.DecodeConfig(config)
		if err != nil {
			return
		}
		var payload map[string]any
		if json.Unmarshal(body, &payload) != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), fuzzEvalBound)
		defer cancel()
		start := time.Now()
		err = desc.Run(ctx, plugins.Invocation{
			Context: plugins.PluginContext{OrgSlug: "org", ProjectID: "proj"},
			Config:  cfg,
			Event:   plugins.Event{Type: "push", Payload: payload},
		})
		if elapsed := time.Since(start); elapsed > fuzzEvalBound+time.Second {
			t.Fatalf("%s took %s", desc.Name, elapsed)
		}
		if err != nil && strings.Contains(err.Error(), testToken) {
			t.Fatalf("%s: token in error text: %v", desc.Name, err)
		}
	})
}
