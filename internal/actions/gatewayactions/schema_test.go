package gatewayactions

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/testenv"
	"github.com/aweber-imbi/imbi-worker/plugins"
)

// testdata/gateway-actions is recorded by gen_pydantic.py with pydantic.
var pydanticDir = filepath.Join("..", "..", "..", "testdata", "gateway-actions")

var actionOfModel = map[string]string{
	"UpdateProjectConfig":      ActionUpdateProject,
	"CreateReleaseConfig":      ActionCreateRelease,
	"AddDeploymentEventConfig": ActionAddDeploymentEvent,
	"IngestSbomConfig":         ActionIngestSbom,
}

type pydanticSamples struct {
	Pydantic string `json:"pydantic"`
	Samples  []struct {
		Model string          `json:"model"`
		Input string          `json:"input"`
		Valid bool            `json:"valid"`
		Error string          `json:"error"`
		Dump  json.RawMessage `json:"dump"`
	} `json:"samples"`
}

// sdkUnwrapped are inputs the SDK's DecodeConfig treats as envelope
// conveniences before any schema runs (a JSON string holding JSON, as a
// WebhookRule stores handler_config; null as "no config"). pydantic sees
// them as values of the wrong type. The divergence is deliberate and
// pinned here so it cannot grow unnoticed.
var sdkUnwrapped = map[string]bool{
	"UpdateProjectConfig\x00\"[]\"": true,
}

// Go's compiled schema + decode accepts exactly what pydantic accepted,
// and a valid config decodes to the same values pydantic produced.
func TestConfigsAcceptWhatPydanticAccepts(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join(pydanticDir, "samples.json"))
	require.NoError(t, err)
	var recorded pydanticSamples
	require.NoError(t, json.Unmarshal(raw, &recorded))
	require.NotEmpty(t, recorded.Samples)

	acts, err := Plugin{}.Actions()
	require.NoError(t, err)
	byName := map[string]plugins.ActionDescriptor{}
	for _, a := range acts {
		byName[a.Name] = a
	}
	seen := map[string]int{}
	for _, s := range recorded.Samples {
		desc, ok := byName[actionOfModel[s.Model]]
		require.True(t, ok, "model %s", s.Model)
		seen[s.Model]++
		cfg, err := desc.DecodeConfig(json.RawMessage(s.Input))
		if sdkUnwrapped[s.Model+"\x00"+s.Input] {
			require.NoError(t, err, "SDK unwraps %s for %s", s.Input, s.Model)
			require.False(t, s.Valid, "pydantic rejects %s", s.Input)
			continue
		}
		if !s.Valid {
			require.Error(t, err, "%s: pydantic rejected %s (%s), Go accepted", s.Model, s.Input, s.Error)
			var ce *plugins.ConfigError
			require.ErrorAs(t, err, &ce)
			continue
		}
		require.NoError(t, err, "%s: pydantic accepted %s", s.Model, s.Input)
		got, err := json.Marshal(cfg)
		require.NoError(t, err)
		require.JSONEq(t, string(withoutNulls(t, s.Dump)), string(got), "%s: decoded value of %s", s.Model, s.Input)
	}
	for model := range actionOfModel {
		require.GreaterOrEqual(t, seen[model], 10, "samples for %s", model)
	}
}

// withoutNulls drops null-valued keys (pydantic dumps unset optionals as
// null; the Go types omit them).
func withoutNulls(t *testing.T, dump json.RawMessage) json.RawMessage {
	var v any
	require.NoError(t, json.Unmarshal(dump, &v))
	var strip func(any) any
	strip = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			for k, val := range x {
				if val == nil {
					delete(x, k)
				} else {
					x[k] = strip(val)
				}
			}
		case []any:
			for i := range x {
				x[i] = strip(x[i])
			}
		}
		return v
	}
	out, err := json.Marshal(strip(v))
	require.NoError(t, err)
	return out
}

// The generated schemas say what pydantic's say, up to annotations
// (titles, descriptions, defaults) and $ref inlining.
func TestGeneratedSchemasMatchPydantic(t *testing.T) {
	t.Parallel()
	acts, err := Plugin{}.Actions()
	require.NoError(t, err)
	byName := map[string]plugins.ActionDescriptor{}
	for _, a := range acts {
		byName[a.Name] = a
	}
	for model, action := range actionOfModel {
		t.Run(model, func(t *testing.T) {
			t.Parallel()
			raw, err := os.ReadFile(filepath.Join(pydanticDir, "schemas", model+".json"))
			require.NoError(t, err)
			var want, got map[string]any
			require.NoError(t, json.Unmarshal(raw, &want))
			require.NoError(t, json.Unmarshal(byName[action].ConfigSchema(), &got))
			require.Equal(t, model, got["title"], "the schema's title is pydantic's")
			require.Equal(t, normalizeSchema(want, want), normalizeSchema(got, got))
		})
	}
}

// normalizeSchema inlines local $refs and drops annotation keywords.
func normalizeSchema(v any, root map[string]any) any {
	switch x := v.(type) {
	case map[string]any:
		if ref, ok := x["$ref"].(string); ok && strings.HasPrefix(ref, "#/$defs/") {
			defs := root["$defs"].(map[string]any)
			return normalizeSchema(defs[strings.TrimPrefix(ref, "#/$defs/")], root)
		}
		out := map[string]any{}
		for k, val := range x {
			switch k {
			case "$schema", "$defs", "title", "description", "default":
				continue
			}
			out[k] = normalizeSchema(val, root)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = normalizeSchema(x[i], root)
		}
		return out
	default:
		return v
	}
}

// The committed recording is what pydantic says today: regenerate it with
// the repo venv's pydantic into a temporary directory and compare. Under
// scripts/test.sh IMBI_TEST_PYTHON is the venv's python (with
// requirements-dev.txt's pydantic and jsonpointer).
func TestPydanticRecordingIsCurrent(t *testing.T) {
	t.Parallel()
	python := testenv.PythonPath(t)
	out := t.TempDir()
	cmd := exec.Command(python, filepath.Join(pydanticDir, "gen_pydantic.py"), "--out", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gen_pydantic.py: %v\n%s", err, b)
	}
	files := []string{"samples.json"}
	for model := range actionOfModel {
		files = append(files, filepath.Join("schemas", model+".json"))
	}
	for _, f := range files {
		want, err := os.ReadFile(filepath.Join(pydanticDir, f))
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join(out, f))
		require.NoError(t, err)
		require.Equal(t, string(want), string(got),
			"%s is stale: run .venv/bin/python testdata/gateway-actions/gen_pydantic.py", f)
	}
}
