package plugins_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/plugins"
)

// pydantic lax coercion and strictness (plugins-spec §2) on one model.
func TestDecodeCoercion(t *testing.T) {
	tests := []struct {
		name     string
		apiJSON  string
		want     int
		wantErr  string
		errField string
	}{
		{"int", `1`, 1, "", ""},
		{"numeric_string", `"2"`, 2, "", ""},
		{"true_is_one", `true`, 1, "", ""},
		{"integral_float", `1.0`, 1, "", ""},
		{"fractional_float", `1.5`, 0, "got a number with a fractional part", "api_version"},
		{"word", `"one"`, 0, "valid integer", "api_version"},
		{"null_is_not_the_default", `null`, 0, "valid integer", "api_version"},
		{"list", `[1]`, 0, "valid integer", "api_version"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := jsonDecode[plugins.PluginManifest](`{"slug":"s","name":"n","plugin_type":"logs","api_version":` + tc.apiJSON + `}`)
			if tc.wantErr != "" {
				requireFieldError(t, err, tc.errField, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, m.APIVersion)
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name, json, field, msg string
	}{
		{"missing_plugin_type", `{"slug":"s","name":"n"}`, "plugin_type", "Field required"},
		{"bad_plugin_type", `{"slug":"s","name":"n","plugin_type":"analysis"}`, "plugin_type",
			"Input should be 'configuration', 'logs', 'identity', 'deployment', 'lifecycle' or 'webhook'"},
		{"bad_auth_type", `{"slug":"s","name":"n","plugin_type":"logs","auth_type":"basic"}`, "auth_type",
			"Input should be 'api_token', 'oauth2', 'oidc' or 'aws-iam-ic'"},
		{"number_for_string", `{"slug":1,"name":"n","plugin_type":"logs"}`, "slug", "valid string"},
		{"null_for_required_string", `{"slug":null,"name":"n","plugin_type":"logs"}`, "slug", "valid string"},
		{"nested_option_missing_label", `{"slug":"s","name":"n","plugin_type":"logs","options":[{"name":"a","label":"A"},{"name":"b"}]}`,
			"options.1.label", "Field required"},
		{"option_type_mapping_not_yet", `{"slug":"s","name":"n","plugin_type":"logs","options":[{"name":"a","label":"A","type":"mapping"}]}`,
			"options.0.type", "Input should be"},
		{"option_default_dict", `{"slug":"s","name":"n","plugin_type":"logs","options":[{"name":"a","label":"A","default":{}}]}`,
			"options.0.default", "valid string, integer or boolean"},
		{"ops_template_key_in_loc", `{"slug":"s","name":"n","plugin_type":"logs","ops_log_templates":{"deploy":{}}}`,
			"ops_log_templates.deploy.label", "Field required"},
		{"not_an_object", `[]`, "", "valid dictionary"},
		{"edge_from_labels_required", `{"slug":"s","name":"n","plugin_type":"logs","edge_labels":[{"name":"E","to_labels":[]}]}`,
			"edge_labels.0.from_labels", "Field required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := jsonDecode[plugins.PluginManifest](tc.json)
			requireFieldError(t, err, tc.field, tc.msg)
		})
	}
}

func TestOptionDefaultSmartUnion(t *testing.T) {
	for raw, want := range map[string]any{`true`: true, `5`: int64(5), `"5"`: "5", `null`: nil} {
		o := decode[plugins.PluginOption](t, `{"name":"a","label":"A","type":"integer","default":`+raw+`}`)
		require.Equal(t, want, o.Default, raw)
	}
}

// Encoding emits every field, in declaration order, with [] / {} for
// list/dict defaults and null for nullable ones.
func TestEncodeEveryFieldInOrder(t *testing.T) {
	m := plugins.PluginManifest{Slug: "s", Name: "n", PluginType: plugins.TypeWebhook, AuthType: plugins.AuthAPIToken, APIVersion: 1,
		Options: []plugins.PluginOption{{Name: "a", Label: "A", Type: "string"}}}
	raw, err := json.Marshal(m)
	require.NoError(t, err)
	require.Equal(t, `{"slug":"s","name":"n","description":null,"plugin_type":"webhook","auth_type":"api_token","api_version":1,`+
		`"cacheable":false,"supports_histogram":false,"supports_deployment_sync":false,"login_capable":false,"requires_identity":false,`+
		`"default_scopes":[],"options":[{"name":"a","label":"A","description":null,"type":"string","required":false,"default":null,"choices":null}],`+
		`"credentials":[],"data_types":[],"vertex_labels":[],"edge_labels":[],"widget_text":null,"ops_log_templates":{}}`, string(raw))
}

func TestLogEntryKeepsExtras(t *testing.T) {
	e := decode[plugins.LogEntry](t, `{"timestamp":"2026-05-04T12:00:00Z","message":"boom","trace_id":"t-1","span":{"id":2}}`)
	require.Equal(t, map[string]any{"trace_id": "t-1", "span": map[string]any{"id": float64(2)}}, e.Extra)
	raw, err := json.Marshal(e)
	require.NoError(t, err)
	require.Equal(t, `{"timestamp":"2026-05-04T12:00:00Z","message":"boom","level":null,"raw":{},"span":{"id":2},"trace_id":"t-1"}`, string(raw))
	require.Equal(t, e, roundTrip(t, e))
}

func TestDatetimeInputs(t *testing.T) {
	want := time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)
	for _, in := range []string{`"2026-05-04T12:00:00Z"`, `"2026-05-04T14:00:00+02:00"`, `"2026-05-04 12:00:00"`, `1777896000`, `1777896000000`, `"1777896000"`} {
		b := decode[plugins.LogHistogramBucket](t, `{"timestamp":`+in+`,"count":"3"}`)
		require.True(t, want.Equal(b.Timestamp), "%s → %s", in, b.Timestamp)
		require.Equal(t, 3, b.Count)
	}
	_, err := jsonDecode[plugins.LogHistogramBucket](`{"timestamp":"yesterday","count":1}`)
	requireFieldError(t, err, "timestamp", "valid datetime")
}

// Validate catches Go-built values that Python would reject; WithDefaults
// supplies what a Go literal leaves out.
func TestManifestValidateGoBuilt(t *testing.T) {
	lit := plugins.PluginManifest{Slug: "s", Name: "n", PluginType: plugins.TypeLogs}
	requireFieldError(t, lit.Validate(), "auth_type", "Input should be")
	require.NoError(t, lit.WithDefaults().Validate())
	require.Equal(t, 1, lit.WithDefaults().APIVersion)

	noType := plugins.PluginManifest{Slug: "s", Name: "n"}.WithDefaults()
	requireFieldError(t, noType.Validate(), "plugin_type", "Input should be")

	badOpt := plugins.NewManifest("s", "n", plugins.TypeLogs)
	badOpt.Options = []plugins.PluginOption{{Name: "a", Label: "A", Type: "float"}}
	requireFieldError(t, badOpt.Validate(), "options.0.type", "Input should be")
}

func TestHistogramDefaults(t *testing.T) {
	got, err := plugins.Histogram(t.Context(), stubLogs{}, testCtx, nil, plugins.LogQuery{}, 0)
	require.NoError(t, err)
	require.NotNil(t, got)
	require.Empty(t, got)
	h := &histLogs{}
	_, err = plugins.Histogram(t.Context(), h, testCtx, nil, plugins.LogQuery{}, 0)
	require.NoError(t, err)
	require.Equal(t, 60, h.got)
	_, _ = plugins.Histogram(t.Context(), h, testCtx, nil, plugins.LogQuery{}, 12)
	require.Equal(t, 12, h.got)
}

func TestIdentityDefaults(t *testing.T) {
	conn := plugins.IdentityCredentials{AccessToken: "a"}
	got, err := plugins.Materialize(t.Context(), stubIdentity{}, testCtx, nil, conn, plugins.MaterializeOptions{})
	require.NoError(t, err)
	require.Equal(t, conn, got)
	require.NoError(t, plugins.Revoke(t.Context(), stubIdentity{}, testCtx, nil, "tok"))
	c := decode[plugins.IdentityCredentials](t, `{"access_token":"a"}`)
	require.Equal(t, "Bearer", c.TokenType)
}

// The wire contract's envelope schema allows null for PluginContext's
// four containers; they decode as empty (a documented deviation from
// pydantic, which would reject null there).
func TestPluginContextNullContainers(t *testing.T) {
	c := decode[plugins.PluginContext](t, `{"project_id":"p","project_slug":"s","org_slug":"o",
		"assignment_options":null,"project_links":null,"project_type_slugs":null,"environment_config":null}`)
	require.Equal(t, map[string]any{}, c.AssignmentOptions)
	require.Equal(t, map[string]string{}, c.ProjectLinks)
	require.Equal(t, []string{}, c.ProjectTypeSlugs)
	require.Equal(t, map[string]any{}, c.EnvironmentConfig)
	_, err := jsonDecode[plugins.PluginContext](`{"project_id":"p","project_slug":"s","org_slug":"o","project_links":{"a":1}}`)
	requireFieldError(t, err, "project_links.a", "valid string")
}
