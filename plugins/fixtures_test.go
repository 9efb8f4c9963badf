package plugins_test

// Interop with Python: testdata/python/valid.json and invalid.json are
// made by pydantic (testdata/python/gen_fixtures.py); Go must read them
// exactly as Python does, and Python must accept what Go writes
// (testdata/python/check_roundtrip.py, run with $IMBI_TEST_PYTHON).

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/testenv"
	"github.com/aweber-imbi/imbi-worker/plugins"
)

const pythonDir = "../testdata/python"

// modelCodecs decode JSON into each model by its Python class name.
var modelCodecs = map[string]func([]byte) (any, error){
	"PluginOption":         codec[plugins.PluginOption],
	"CredentialField":      codec[plugins.CredentialField],
	"DataType":             codec[plugins.DataType],
	"PluginIndex":          codec[plugins.PluginIndex],
	"PluginVertexLabel":    codec[plugins.PluginVertexLabel],
	"PluginEdgeLabel":      codec[plugins.PluginEdgeLabel],
	"OpsLogTemplate":       codec[plugins.OpsLogTemplate],
	"PluginManifest":       codec[plugins.PluginManifest],
	"IdentityCredentials":  codec[plugins.IdentityCredentials],
	"IdentityProfile":      codec[plugins.IdentityProfile],
	"PollingDescriptor":    codec[plugins.PollingDescriptor],
	"AuthorizationRequest": codec[plugins.AuthorizationRequest],
	"PluginContext":        codec[plugins.PluginContext],
	"ConfigValue":          codec[plugins.ConfigValue],
	"ConfigKey":            codec[plugins.ConfigKey],
	"ConfigKeyWithValue":   codec[plugins.ConfigKeyWithValue],
	"LogFilter":            codec[plugins.LogFilter],
	"LogQuery":             codec[plugins.LogQuery],
	"LogEntry":             codec[plugins.LogEntry],
	"LogHistogramBucket":   codec[plugins.LogHistogramBucket],
	"LogResult":            codec[plugins.LogResult],
	"Ref":                  codec[plugins.Ref],
	"Commit":               codec[plugins.Commit],
	"CompareResult":        codec[plugins.CompareResult],
	"RefInfo":              codec[plugins.RefInfo],
	"ReleaseInfo":          codec[plugins.ReleaseInfo],
	"WorkflowFile":         codec[plugins.WorkflowFile],
	"DeploymentRun":        codec[plugins.DeploymentRun],
	"RemoteDeployment":     codec[plugins.RemoteDeployment],
	"LifecycleResult":      codec[plugins.LifecycleResult],
}

func codec[T any](raw []byte) (any, error) {
	var v T
	err := json.Unmarshal(raw, &v)
	return v, err
}

type validFixture struct {
	Name  string          `json:"name"`
	Model string          `json:"model"`
	Input json.RawMessage `json:"input"`
	Dump  json.RawMessage `json:"dump"`
}

type invalidFixture struct {
	Name  string          `json:"name"`
	Model string          `json:"model"`
	Input json.RawMessage `json:"input"`
	Loc   string          `json:"loc"`
	Type  string          `json:"type"`
}

func readFixtures[T any](t *testing.T, name string) []T {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(pythonDir, name))
	require.NoError(t, err)
	var out []T
	require.NoError(t, json.Unmarshal(raw, &out))
	require.NotEmpty(t, out)
	return out
}

// encodeFixture decodes raw as model and returns Go's encoding.
func encodeFixture(t *testing.T, model string, raw []byte) []byte {
	t.Helper()
	dec, ok := modelCodecs[model]
	require.True(t, ok, "no Go codec for %s", model)
	v, err := dec(raw)
	require.NoError(t, err)
	out, err := json.Marshal(v)
	require.NoError(t, err)
	return out
}

// Go decodes what Python accepts (minimal and lax inputs, and Python's
// own dumps) and encodes it to Python's document: same fields, same
// values, same defaults, fields in declaration order. (Keys inside a
// dict-typed field come out sorted: Go maps have no insertion order.)
func TestPythonFixturesDecodeAndEncode(t *testing.T) {
	for _, f := range readFixtures[validFixture](t, "valid.json") {
		t.Run(f.Name, func(t *testing.T) {
			requireSameDocument(t, f.Dump, encodeFixture(t, f.Model, f.Input))
			requireSameDocument(t, f.Dump, encodeFixture(t, f.Model, f.Dump))
		})
	}
}

// requireSameDocument compares JSON documents by value, and the
// top-level keys (the model's fields) by order.
func requireSameDocument(t *testing.T, want, got []byte) {
	t.Helper()
	require.Equal(t, documentOf(t, want), documentOf(t, got), string(got))
	require.Equal(t, topLevelKeys(t, want), topLevelKeys(t, got))
}

func documentOf(t *testing.T, raw []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	require.NoError(t, dec.Decode(&v))
	return v
}

func topLevelKeys(t *testing.T, raw []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	require.NoError(t, err)
	require.Equal(t, json.Delim('{'), tok)
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		require.NoError(t, err)
		keys = append(keys, k.(string))
		var skip json.RawMessage
		require.NoError(t, dec.Decode(&skip))
	}
	return keys
}

// Go rejects what Python rejects, naming the same field.
func TestPythonInvalidFixturesRejected(t *testing.T) {
	for _, f := range readFixtures[invalidFixture](t, "invalid.json") {
		t.Run(f.Name, func(t *testing.T) {
			_, err := modelCodecs[f.Model](f.Input)
			var ve *plugins.ValidationError
			require.True(t, errors.As(err, &ve), "want a validation error (pydantic: %s at %s), got %v", f.Type, f.Loc, err)
			require.Equal(t, f.Loc, ve.Field, ve.Error())
		})
	}
}

// goBuilt are values made in Go (not decoded), so nil slices and maps,
// and defaults supplied by constructors, are checked by Python too.
func goBuilt() map[string]any {
	desc := "built in Go"
	m := plugins.NewManifest("go-built", "Go built", plugins.TypeWebhook)
	m.Description = &desc
	m.Credentials = []plugins.CredentialField{plugins.NewCredentialField("token", "Token")}
	m.Options = []plugins.PluginOption{{Name: "n", Label: "N", Type: plugins.OptionInteger, Default: int64(3)}}
	lit := plugins.PluginManifest{Slug: "lit", Name: "Literal", PluginType: plugins.TypeLogs}.WithDefaults()
	ts := time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)
	return map[string]any{
		"go_manifest":     m,
		"go_manifest_lit": lit,
		"go_context":      plugins.PluginContext{ProjectID: "p", ProjectSlug: "s", OrgSlug: "o"},
		"go_log_entry":    plugins.LogEntry{Timestamp: ts, Message: "m", Extra: map[string]any{"host": "web-1"}},
		"go_commit":       plugins.Commit{SHA: "a", ShortSHA: "a", Message: "m", CIStatus: plugins.CheckUnknown, AuthoredAt: &ts},
		"go_auth_request": plugins.AuthorizationRequest{AuthorizationURL: "u", State: "s"},
	}
}

var goBuiltModels = map[string]string{
	"go_manifest": "PluginManifest", "go_manifest_lit": "PluginManifest", "go_context": "PluginContext",
	"go_log_entry": "LogEntry", "go_commit": "Commit", "go_auth_request": "AuthorizationRequest",
}

// Python validates every Go encoding and dumps it back unchanged.
func TestPythonValidatesGoEncoding(t *testing.T) {
	python := testenv.PythonPath(t)
	type row struct {
		Name  string `json:"name"`
		Model string `json:"model"`
		JSON  string `json:"json"`
	}
	var rows []row
	for _, f := range readFixtures[validFixture](t, "valid.json") {
		rows = append(rows, row{f.Name, f.Model, string(encodeFixture(t, f.Model, f.Input))})
	}
	for name, v := range goBuilt() {
		raw, err := json.Marshal(v)
		require.NoError(t, err)
		rows = append(rows, row{name, goBuiltModels[name], string(raw)})
	}
	out := filepath.Join(t.TempDir(), "go-encodings.json")
	raw, err := json.Marshal(rows)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(out, raw, 0o600))
	cmd := exec.CommandContext(t.Context(), python, filepath.Join(pythonDir, "check_roundtrip.py"), out)
	msg, err := cmd.CombinedOutput()
	require.NoError(t, err, string(msg))
	require.Contains(t, string(msg), "0 failures")
	t.Log(string(msg))
}
