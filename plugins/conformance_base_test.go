package plugins_test

// Conformance: Python's tests/common/test_plugins/test_base.py (plugins-spec
// §12, cases 1–48). Case numbers are in each test's comment; the mapping
// is docs/conformance.md.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	invopop "github.com/invopop/jsonschema"
	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/plugins"
)

// decode unmarshals JSON text into a fresh T and fails the test on error.
func decode[T any](t *testing.T, text string) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal([]byte(text), &v))
	return v
}

// roundTrip is Python's Model.model_validate(m.model_dump()).
func roundTrip[T any](t *testing.T, v T) T {
	t.Helper()
	raw, err := json.Marshal(v)
	require.NoError(t, err)
	var out T
	require.NoError(t, json.Unmarshal(raw, &out), string(raw))
	return out
}

// asMap is a value's JSON encoding as a generic map.
func asMap(t *testing.T, v any) map[string]any {
	t.Helper()
	raw, err := json.Marshal(v)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	return m
}

func ptrTo[T any](v T) *T { return &v }

// Case 1.
func TestPluginManifestValid(t *testing.T) {
	m := decode[plugins.PluginManifest](t, `{"slug":"test","name":"Test","plugin_type":"configuration"}`)
	require.Equal(t, "test", m.Slug)
	require.Equal(t, "Test", m.Name)
	require.Equal(t, plugins.TypeConfiguration, m.PluginType)
	require.Equal(t, 1, m.APIVersion)
	require.True(t, m.Cacheable)
	require.Equal(t, plugins.AuthAPIToken, m.AuthType)
	enc := asMap(t, m)
	for _, k := range []string{"options", "credentials", "data_types", "default_scopes", "vertex_labels", "edge_labels"} {
		require.Equal(t, []any{}, enc[k], k)
	}
	require.Equal(t, map[string]any{}, enc["ops_log_templates"])

	// The Go constructor gives the same defaults.
	require.Equal(t, enc, asMap(t, plugins.NewManifest("test", "Test", plugins.TypeConfiguration)))
}

// Case 2.
func TestPluginManifestWithOptions(t *testing.T) {
	m := plugins.NewManifest("test", "Test", plugins.TypeLogs)
	m.Options = []plugins.PluginOption{{Name: "log_group", Label: "Log group", Type: plugins.OptionString, Required: true}}
	got := roundTrip(t, m)
	require.Len(t, got.Options, 1)
	require.Equal(t, "log_group", got.Options[0].Name)
	require.True(t, got.Options[0].Required)
	require.Nil(t, got.Options[0].Choices)
	require.Nil(t, got.Options[0].Default)
}

// Case 3.
func TestConfigKeyNoValue(t *testing.T) {
	_, ok := reflect.TypeOf(plugins.ConfigKey{}).FieldByName("Value")
	require.False(t, ok)
	k := decode[plugins.ConfigKey](t, `{"key":"k","data_type":"string","value":"ignored"}`)
	require.NotContains(t, asMap(t, k), "value")
}

// Case 4.
func TestConfigKeyWithValue(t *testing.T) {
	k := roundTrip(t, plugins.ConfigKeyWithValue{Key: "db_host", DataType: "string", Value: "localhost"})
	require.Equal(t, "db_host", k.Key)
	require.Equal(t, "localhost", k.Value)
	_, err := jsonDecode[plugins.ConfigKeyWithValue](`{"key":"k","data_type":"string"}`)
	requireFieldError(t, err, "value", "Field required")
}

// Case 5.
func TestLogQueryFilters(t *testing.T) {
	q := decode[plugins.LogQuery](t, `{"start_time":"2026-05-04T00:00:00Z","end_time":"2026-05-04T01:00:00Z",
		"filters":[{"field":"level","op":"eq","value":"error"}]}`)
	require.Equal(t, []plugins.LogFilter{{Field: "level", Op: plugins.OpEq, Value: "error"}}, q.Filters)
	require.Equal(t, 100, q.Limit)
}

// Case 6.
func TestLogFilterOps(t *testing.T) {
	for _, op := range []string{"eq", "ne", "contains", "starts_with", "regex"} {
		f := decode[plugins.LogFilter](t, fmt.Sprintf(`{"field":"f","op":%q,"value":"v"}`, op))
		require.Equal(t, plugins.LogFilterOp(op), f.Op)
	}
	_, err := jsonDecode[plugins.LogFilter](`{"field":"f","op":"gt","value":"v"}`)
	requireFieldError(t, err, "op", "Input should be 'eq', 'ne', 'contains', 'starts_with' or 'regex'")
}

// Case 7.
func TestIdentityProfileRoundTrip(t *testing.T) {
	p := roundTrip(t, plugins.IdentityProfile{Subject: "u-1", Email: ptrTo("a@example.com"), EmailVerified: true, Groups: []string{"eng"}})
	require.Equal(t, "u-1", p.Subject)
	require.Equal(t, "a@example.com", *p.Email)
	require.True(t, p.EmailVerified)
	require.Equal(t, []string{"eng"}, p.Groups)
}

// Case 8.
func TestIdentityCredentialsRedactedRepr(t *testing.T) {
	c := plugins.IdentityCredentials{AccessToken: "tok-secret-123", RefreshToken: ptrTo("refresh-secret-456")}
	for _, s := range []string{c.String(), c.GoString(), fmt.Sprint(c), fmt.Sprintf("%v|%+v|%#v|%s|%q", c, c, c, c, c), fmt.Sprintf("%v", &c)} {
		require.NotContains(t, s, "secret")
	}
	require.Equal(t, "<IdentityCredentials redacted>", c.String())
	require.Equal(t, "<IdentityCredentials redacted>", fmt.Sprintf("%#v", c))
	// JSON is not redacted (the host persists it).
	require.Equal(t, "tok-secret-123", asMap(t, c)["access_token"])
}

// Case 9.
func TestAuthorizationRequestPolling(t *testing.T) {
	poll := plugins.PollingDescriptor{UserCode: "ABCD", VerificationURI: "https://example.com/device", Interval: 5, ExpiresIn: 600}
	r := roundTrip(t, plugins.AuthorizationRequest{AuthorizationURL: "https://example.com/auth", State: "s", Polling: &poll})
	require.Equal(t, poll, *r.Polling)
	p := decode[plugins.PollingDescriptor](t, `{"user_code":"X","verification_uri":"u","expires_in":60}`)
	require.Equal(t, 5, p.Interval)
}

// Case 10.
func TestPluginContextIdentityOptional(t *testing.T) {
	c := decode[plugins.PluginContext](t, `{"project_id":"p1","project_slug":"proj","org_slug":"org"}`)
	require.Nil(t, c.Identity)
	require.Nil(t, c.ActorUserID)
	m := asMap(t, c)
	require.Nil(t, m["identity"])
	require.Contains(t, m, "identity")
	require.Nil(t, m["actor_user_id"])
	_, err := jsonDecode[plugins.PluginContext](`{"project_id":"p1","project_slug":"proj"}`)
	requireFieldError(t, err, "org_slug", "Field required")
}

// Case 11.
func TestIdentityPluginManifest(t *testing.T) {
	m := decode[plugins.PluginManifest](t, `{"slug":"okta","name":"Okta","plugin_type":"identity",
		"auth_type":"oidc","login_capable":true,"default_scopes":["openid","email"]}`)
	got := roundTrip(t, m)
	require.Equal(t, plugins.TypeIdentity, got.PluginType)
	require.Equal(t, plugins.AuthOIDC, got.AuthType)
	require.True(t, got.LoginCapable)
	require.Equal(t, []string{"openid", "email"}, got.DefaultScopes)
}

// Case 12.
func TestPluginVertexLabelRoundTrip(t *testing.T) {
	v := plugins.PluginVertexLabel{Name: "AwsAccount", ModelRef: "imbi_aws.models:Account",
		Indexes: []plugins.PluginIndex{{Fields: []string{"account_id"}, Unique: true}, {Fields: []string{"name"}}}}
	got := roundTrip(t, v)
	require.Equal(t, v, got)
}

// Case 13.
func TestPluginEdgeLabelRoundTrip(t *testing.T) {
	got := roundTrip(t, plugins.PluginEdgeLabel{Name: "OWNS", FromLabels: []string{"Team"}, ToLabels: []string{"AwsAccount"}})
	require.Equal(t, "OWNS", got.Name)
	require.Equal(t, []string{"AwsAccount"}, got.ToLabels)
	require.Equal(t, map[string]string{}, got.Properties)
}

// Case 14.
func TestRefRoundTrip(t *testing.T) {
	r := roundTrip(t, plugins.Ref{Name: "main", Kind: plugins.RefDefault, SHA: "abc", IsDefault: true})
	require.Equal(t, plugins.Ref{Name: "main", Kind: plugins.RefDefault, SHA: "abc", IsDefault: true}, r)
	_, err := jsonDecode[plugins.Ref](`{"name":"x","kind":"pr","sha":"a"}`)
	requireFieldError(t, err, "kind", "Input should be 'branch', 'tag' or 'default'")
}

// Case 15.
func TestCommitDefaults(t *testing.T) {
	c := decode[plugins.Commit](t, `{"sha":"abc123","short_sha":"abc","message":"m"}`)
	require.Equal(t, plugins.CheckUnknown, c.CIStatus)
	require.False(t, c.IsHead)
	require.Nil(t, c.Author)
}

// Case 16.
func TestCompareResultAggregates(t *testing.T) {
	cr := plugins.CompareResult{BaseSHA: "a", HeadSHA: "b", Ahead: 2, Behind: 0,
		Commits:      []plugins.Commit{{SHA: "1", ShortSHA: "1", Message: "one", CIStatus: plugins.CheckPass}, {SHA: "2", ShortSHA: "2", Message: "two", CIStatus: plugins.CheckUnknown}},
		FilesChanged: 3, Additions: 10, Deletions: 4, PRNumbers: []int{7}}
	require.Equal(t, cr, roundTrip(t, cr))
}

// Case 17.
func TestReleaseInfoRoundTrip(t *testing.T) {
	r := roundTrip(t, plugins.ReleaseInfo{ID: "1", Tag: "v1.0.0"})
	require.Equal(t, "v1.0.0", r.Tag)
	require.False(t, r.Prerelease)
}

// Case 18.
func TestRefInfoRoundTrip(t *testing.T) {
	r := roundTrip(t, plugins.RefInfo{Name: "v1", SHA: "abc"})
	require.Equal(t, plugins.RefInfo{Name: "v1", SHA: "abc"}, r)
}

// Case 19.
func TestDeploymentRunDefaultStatus(t *testing.T) {
	r := decode[plugins.DeploymentRun](t, `{"run_id":"42"}`)
	require.Equal(t, plugins.RunQueued, r.Status)
	require.Nil(t, r.CompletedAt)
}

// Case 20.
func TestWorkflowFileRoundTrip(t *testing.T) {
	w := decode[plugins.WorkflowFile](t, `{"id":"1","path":".github/workflows/deploy.yml","name":"Deploy"}`)
	require.Equal(t, "active", w.State)
	require.Equal(t, w, roundTrip(t, w))
}

// Case 21.
func TestDeploymentPluginTypeAccepted(t *testing.T) {
	m := decode[plugins.PluginManifest](t, `{"slug":"gh","name":"GitHub","plugin_type":"deployment",
		"options":[{"name":"workflow","label":"Workflow"}]}`)
	require.Equal(t, plugins.TypeDeployment, m.PluginType)
	require.Equal(t, "string", m.Options[0].Type)
}

// stubDeployment implements only the abstract DeploymentPlugin methods.
type stubDeployment struct{}

func (stubDeployment) Manifest() plugins.PluginManifest {
	return plugins.NewManifest("stub-deploy", "Stub", plugins.TypeDeployment)
}
func (stubDeployment) ListRefs(context.Context, plugins.PluginContext, plugins.Credentials, plugins.RefListKind, *string) ([]plugins.Ref, error) {
	return nil, nil
}
func (stubDeployment) ListCommits(context.Context, plugins.PluginContext, plugins.Credentials, string, int) ([]plugins.Commit, error) {
	return nil, nil
}
func (stubDeployment) ResolveCommittish(context.Context, plugins.PluginContext, plugins.Credentials, string) (plugins.Commit, error) {
	return plugins.Commit{}, nil
}
func (stubDeployment) Compare(context.Context, plugins.PluginContext, plugins.Credentials, string, string) (plugins.CompareResult, error) {
	return plugins.CompareResult{}, nil
}
func (stubDeployment) TriggerDeployment(context.Context, plugins.PluginContext, plugins.Credentials, string, map[string]string) (plugins.DeploymentRun, error) {
	return plugins.DeploymentRun{}, nil
}
func (stubDeployment) GetDeploymentStatus(context.Context, plugins.PluginContext, plugins.Credentials, string) (plugins.DeploymentRun, error) {
	return plugins.DeploymentRun{}, nil
}

// taggingDeployment adds the optional tag capability.
type taggingDeployment struct{ stubDeployment }

func (taggingDeployment) CreateTag(_ context.Context, _ plugins.PluginContext, _ plugins.Credentials, sha, tag, _ string) (plugins.RefInfo, error) {
	return plugins.RefInfo{Name: tag, SHA: sha}, nil
}

var testCtx = plugins.PluginContext{ProjectID: "p1", ProjectSlug: "proj", OrgSlug: "org"}

// Cases 22–26: Python's concrete defaults of DeploymentPlugin.
func TestDeploymentPluginDefaults(t *testing.T) {
	ctx := context.Background()
	p := stubDeployment{}
	creds := plugins.Credentials{}
	tests := []struct {
		name string
		call func() error
	}{
		{"create_tag", func() error { _, err := plugins.CreateTag(ctx, p, testCtx, creds, "abc", "v1", "msg"); return err }},
		{"create_release", func() error {
			_, err := plugins.CreateRelease(ctx, p, testCtx, creds, "v1", "v1", "body", false)
			return err
		}},
		{"list_workflows", func() error { _, err := plugins.ListWorkflows(ctx, p, testCtx, creds); return err }},
		{"list_recent_deployments", func() error {
			_, err := plugins.ListRecentDeployments(ctx, p, testCtx, creds, []string{"prod"}, 0)
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name+"_default_raises", func(t *testing.T) {
			err := tc.call()
			require.ErrorIs(t, err, plugins.ErrNotImplemented)
			require.EqualError(t, err, tc.name+" is not implemented by this plugin")
		})
	}
	t.Run("get_check_status_default_returns_unknown", func(t *testing.T) {
		s, err := plugins.GetCheckStatus(ctx, p, testCtx, creds, "abc")
		require.NoError(t, err)
		require.Equal(t, plugins.CheckUnknown, s)
	})
	t.Run("capability_is_called_when_implemented", func(t *testing.T) {
		ri, err := plugins.CreateTag(ctx, taggingDeployment{}, testCtx, creds, "abc", "v1", "msg")
		require.NoError(t, err)
		require.Equal(t, plugins.RefInfo{Name: "v1", SHA: "abc"}, ri)
	})
}

// Cases 27–28.
func TestSupportsDeploymentSync(t *testing.T) {
	m := decode[plugins.PluginManifest](t, `{"slug":"d","name":"D","plugin_type":"deployment"}`)
	require.False(t, m.SupportsDeploymentSync)
	m.SupportsDeploymentSync = true
	require.True(t, roundTrip(t, m).SupportsDeploymentSync)
}

// Cases 29–30.
func TestOpsLogTemplates(t *testing.T) {
	m := decode[plugins.PluginManifest](t, `{"slug":"d","name":"D","plugin_type":"deployment"}`)
	require.Empty(t, m.OpsLogTemplates)
	require.Equal(t, map[string]any{}, asMap(t, m)["ops_log_templates"])
	m.OpsLogTemplates = map[string]plugins.OpsLogTemplate{"deploy": {Label: "Deployed {{version}} to {{environment}}", Summary: ptrTo("by {{actor}}")}}
	got := roundTrip(t, m).OpsLogTemplates["deploy"]
	require.Equal(t, "Deployed {{version}} to {{environment}}", got.Label)
	require.Equal(t, "by {{actor}}", *got.Summary)
}

// Cases 31–32.
func TestRemoteDeployment(t *testing.T) {
	created := time.Date(2026, 5, 19, 12, 0, 0, 0, time.UTC)
	full := plugins.RemoteDeployment{Environment: "production", SHA: "abc", Ref: ptrTo("main"), Status: plugins.EventSuccess,
		CreatedAt: created, ExternalRunID: "run-1", RunURL: ptrTo("https://ci/run/1")}
	require.Equal(t, full, roundTrip(t, full))
	min := decode[plugins.RemoteDeployment](t, `{"environment":"staging","sha":"abc","status":"pending",
		"created_at":"2026-05-19T12:00:00Z","external_run_id":"r"}`)
	require.Nil(t, min.Ref)
	require.Nil(t, min.RunURL)
	require.True(t, created.Equal(min.CreatedAt))
}

// Case 33.
func TestLifecyclePluginTypeAccepted(t *testing.T) {
	m := decode[plugins.PluginManifest](t, `{"slug":"l","name":"L","plugin_type":"lifecycle",
		"options":[{"name":"archive_repo","label":"Archive repo","type":"boolean","default":true}]}`)
	require.Equal(t, plugins.TypeLifecycle, m.PluginType)
	require.Equal(t, true, m.Options[0].Default)
}

// Cases 34–35.
func TestLifecycleResult(t *testing.T) {
	r := plugins.LifecycleResult{Status: plugins.LifecycleOK, Message: ptrTo("archived"), Artifacts: map[string]string{"repo": "x"}}
	require.Equal(t, r, roundTrip(t, r))
	d := decode[plugins.LifecycleResult](t, `{"status":"skipped"}`)
	require.Nil(t, d.Message)
	require.Equal(t, map[string]any{}, asMap(t, d)["artifacts"])
}

type stubLifecycle struct{}

func (stubLifecycle) Manifest() plugins.PluginManifest {
	return plugins.NewManifest("stub-life", "Stub", plugins.TypeLifecycle)
}
func (stubLifecycle) OnProjectArchived(context.Context, plugins.PluginContext, plugins.Credentials) (plugins.LifecycleResult, error) {
	return plugins.LifecycleResult{Status: plugins.LifecycleOK}, nil
}

// Cases 36–37.
func TestLifecyclePluginDefaults(t *testing.T) {
	ctx := context.Background()
	_, err := plugins.OnProjectUnarchived(ctx, stubLifecycle{}, testCtx, nil)
	require.ErrorIs(t, err, plugins.ErrNotImplemented)
	// Case 37: a host calls on_project_archived through the interface and
	// the result leaves it as Python's model_dump: status "ok", message
	// null, artifacts {} (not null) although the stub left them unset.
	var p plugins.LifecyclePlugin = stubLifecycle{}
	r, err := p.OnProjectArchived(ctx, testCtx, nil)
	require.NoError(t, err)
	got, err := json.Marshal(r)
	require.NoError(t, err)
	require.Equal(t, `{"status":"ok","message":null,"artifacts":{}}`, string(got))
}

// Cases 38–39.
func TestPluginContextEnvironmentConfig(t *testing.T) {
	c := decode[plugins.PluginContext](t, `{"project_id":"p","project_slug":"s","org_slug":"o"}`)
	require.Equal(t, map[string]any{}, asMap(t, c)["environment_config"])
	c.EnvironmentConfig = map[string]any{"aws": map[string]any{"region": "us-east-1", "ids": []any{"a", "b"}}}
	require.Equal(t, c.EnvironmentConfig, roundTrip(t, c).EnvironmentConfig)
}

// Cases 40–41.
func TestWebhookPluginType(t *testing.T) {
	m := decode[plugins.PluginManifest](t, `{"slug":"gh","name":"GitHub","plugin_type":"webhook",
		"credentials":[{"name":"token","label":"Token"}]}`)
	require.Equal(t, plugins.TypeWebhook, m.PluginType)
	require.Equal(t, []plugins.CredentialField{{Name: "token", Label: "Token", Required: true}}, m.Credentials)
	require.Equal(t, []string{"token"}, m.RequiredCredentials())
}

type sampleActionConfig struct {
	Repo string `json:"repo"`
}

var sampleCalls []string

func sampleAction(_ context.Context, in plugins.ActionInput[sampleActionConfig]) error {
	sampleCalls = append(sampleCalls, in.Config.Repo)
	return nil
}

// Case 42: Python resolves import strings to the very callable and
// config class; Go's NewAction takes them directly and keeps their names.
func TestDescriptorResolvesImportStrings(t *testing.T) {
	d, err := plugins.NewAction("do_thing", "Do thing", sampleAction)
	require.NoError(t, err)
	require.True(t, d.Valid())
	require.True(t, strings.HasSuffix(d.CallableName(), "plugins_test.sampleAction"), d.CallableName())
	require.Equal(t, "github.com/aweber-imbi/imbi-worker/plugins_test.sampleActionConfig", d.ConfigModelName())
	cfg, err := d.DecodeConfig(json.RawMessage(`{"repo":"a/b"}`))
	require.NoError(t, err)
	require.Equal(t, sampleActionConfig{Repo: "a/b"}, cfg)
	sampleCalls = nil
	require.NoError(t, d.Run(context.Background(), plugins.Invocation{Config: cfg}))
	require.Equal(t, []string{"a/b"}, sampleCalls)
	require.Contains(t, string(d.ConfigSchema()), `"repo"`)
}

// Case 43.
func TestDescriptorDefaultsDescriptionToNone(t *testing.T) {
	d := plugins.MustAction("do_thing", "Do thing", sampleAction)
	require.Nil(t, d.Description)
	require.Nil(t, asMap(t, d)["description"])
}

// Case 44.
func TestDescriptorRejectsBadName(t *testing.T) {
	for _, name := range []string{"Bad-Name", "", "1abc", "a-b"} {
		_, err := plugins.NewAction(name, "L", sampleAction)
		requireExactFieldError(t, err, "name", fmt.Sprintf("String should match pattern '^[a-z][a-z0-9_]*$' (got %q)", name))
	}
	_, err := plugins.NewAction("ok", "", sampleAction)
	requireExactFieldError(t, err, "label", "String should have at least 1 character")
}

// Case 45: the Go analogue of an unresolvable callable is a nil function.
func TestDescriptorRejectsUnresolvableCallable(t *testing.T) {
	_, err := plugins.NewAction[sampleActionConfig]("do_thing", "Do thing", nil)
	requireExactFieldError(t, err, "callable", "callable must not be nil")
}

// brokenConfig's JSON Schema does not compile (invalid regex), the Go
// analogue of a config_model that does not resolve to a model class.
type brokenConfig struct{}

func (brokenConfig) JSONSchema() *invopop.Schema {
	return &invopop.Schema{Type: "string", Pattern: "(unclosed"}
}

// Case 46.
func TestDescriptorRejectsUnresolvableConfigModel(t *testing.T) {
	_, err := plugins.NewAction("do_thing", "Do thing", func(context.Context, plugins.ActionInput[brokenConfig]) error { return nil })
	requireExactFieldError(t, err, "config_model", `"https://imbi-worker.invalid/action-config.json#" is not valid against metaschema: `+
		"jsonschema validation failed with 'https://json-schema.org/draft/2020-12/schema#'\n"+
		"- at '': 'allOf' failed\n"+
		"  - at '/pattern': '(unclosed' is not valid regex: error parsing regexp: missing closing ): `(unclosed`")
}

// manifestOnly has a manifest but implements no kind.
type manifestOnly struct{}

func (manifestOnly) Manifest() plugins.PluginManifest {
	return plugins.NewManifest("m", "M", plugins.TypeWebhook)
}

type sampleWebhook struct{}

func (sampleWebhook) Manifest() plugins.PluginManifest {
	return plugins.NewManifest("sample", "Sample", plugins.TypeWebhook)
}
func (sampleWebhook) Actions() ([]plugins.ActionDescriptor, error) {
	d, err := plugins.NewAction("do_thing", "Do thing", sampleAction)
	return []plugins.ActionDescriptor{d}, err
}

// Case 47: Python's "cannot instantiate without actions()" is a compile
// error in Go: a type without Actions() is not a WebhookActionPlugin. The
// registry's kind check rejects it at load
// (internal/registry TestLoadPluginsKindChecks/class_missing_interface).
func TestSubclassMustImplementActions(t *testing.T) {
	var p plugins.Plugin = manifestOnly{}
	_, ok := p.(plugins.WebhookActionPlugin)
	require.False(t, ok)
	_, ok = plugins.Plugin(sampleWebhook{}).(plugins.WebhookActionPlugin)
	require.True(t, ok)
}

// Case 48.
func TestConcreteSubclassReturnsCatalog(t *testing.T) {
	var p plugins.WebhookActionPlugin = sampleWebhook{}
	acts, err := p.Actions()
	require.NoError(t, err)
	require.Len(t, acts, 1)
	require.True(t, acts[0].Valid())
	require.Equal(t, "do_thing", acts[0].Name)
}

// jsonDecode returns the decode error instead of failing.
func jsonDecode[T any](text string) (T, error) {
	var v T
	err := json.Unmarshal([]byte(text), &v)
	return v, err
}

// requireFieldError asserts err is a *ValidationError naming field whose
// message contains msg.
func requireFieldError(t *testing.T, err error, field, msg string) {
	t.Helper()
	var ve *plugins.ValidationError
	require.True(t, errors.As(err, &ve), "want *ValidationError, got %T %v", err, err)
	require.Equal(t, field, ve.Field, ve.Error())
	require.Contains(t, ve.Message, msg)
}

// requireExactFieldError asserts err is a *ValidationError naming field
// with exactly msg.
func requireExactFieldError(t *testing.T, err error, field, msg string) {
	t.Helper()
	var ve *plugins.ValidationError
	require.True(t, errors.As(err, &ve), "want *ValidationError, got %T %v", err, err)
	require.Equal(t, field, ve.Field, ve.Error())
	require.Equal(t, msg, ve.Message)
}

func jsonUnmarshal(text string, v any) error { return json.Unmarshal([]byte(text), v) }
