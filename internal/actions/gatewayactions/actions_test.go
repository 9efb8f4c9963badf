package gatewayactions

// Ports of imbi-gateway tests/gateway/test_actions.py at d24b7218 (06-05).
// The Python tests mock ImbiClient methods; these run the real client
// against a local imbi-api (fakeAPI) and assert the HTTP requests. Where
// the Python action logged and returned, the Go action returns the
// worker's outcome class instead (see the comment atop actions.go); such
// tests say so.

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/plugins"
)

const deploymentBody = `{"deployment": {
	"ref": "v1.2.3", "sha": "abcdef1234567890",
	"description": "Deployed v1.2.3 to production",
	"url": "https://api.github.com/repos/o/r/deployments/42",
	"environment": "production", "creator": {"id": 12345}}}`

const statusBody = `{"deployment": {
	"ref": "v1.2.3", "sha": "abcdef1234567890",
	"url": "https://api.github.com/repos/o/r/deployments/42",
	"environment": "production"},
	"deployment_status": {"state": "success", "environment": "production"}}`

const createReleaseConfig = `{"title_selector": "/payload/deployment/ref",
	"committish_expression": "substring(payload.deployment.sha, 0, 7)",
	"version_expression": "payload.deployment.ref"}`

const deploymentEventConfig = `{"environment_selector": "/payload/deployment_status/environment",
	"committish_expression": "substring(payload.deployment.sha, 0, 7)",
	"version_expression": "payload.deployment.ref",
	"status_selector": "/payload/deployment_status/state"}`

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// withStatus is statusBody with another deployment_status.state.
func withStatus(state string) string {
	return fmt.Sprintf(`{"deployment": {"ref": "v1.2.3", "sha": "abcdef1234567890"},
		"deployment_status": {"state": %q, "environment": "production"}}`, state)
}

// --- UpdateProjectTests ---------------------------------------------------

func TestUpdateProject(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		config    string
		body      string
		org, proj string
		wantPath  string
		wantPatch string
	}{
		{
			name:   "single rule builds correct patch",
			config: `[{"path": "/name", "from": "/payload/repo/name"}]`, body: `{"repo": {"name": "my-repo"}}`,
			org: "myorg", proj: "proj-1", wantPath: "/organizations/myorg/projects/proj-1",
			wantPatch: `[{"op": "add", "path": "/name", "value": "my-repo"}]`,
		},
		{
			name:   "multiple rules produce multiple operations in order",
			config: `[{"path": "/x", "from": "/payload/a"}, {"path": "/y", "from": "/payload/b"}]`, body: `{"a": 1, "b": 2}`,
			org: "org", proj: "proj", wantPath: "/organizations/org/projects/proj",
			wantPatch: `[{"op": "add", "path": "/x", "value": 1}, {"op": "add", "path": "/y", "value": 2}]`,
		},
		{
			name:   "empty rules still calls patch",
			config: `[]`, body: `{}`, org: "org", proj: "proj",
			wantPath: "/organizations/org/projects/proj", wantPatch: `[]`,
		},
		{
			name:   "values keep their JSON type and event fields are selectable",
			config: `[{"path": "/links/0", "from": "/payload/links"}, {"path": "/description", "from": "/type"}]`,
			body:   `{"links": [{"url": "https://x"}, null, true, 1.5]}`, org: "org", proj: "proj",
			wantPath:  "/organizations/org/projects/proj",
			wantPatch: `[{"op":"add","path":"/links/0","value":[{"url":"https://x"},null,true,1.5]},{"op":"add","path":"/description","value":"deployment_status"}]`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			require.NoError(t, b.run(t, ActionUpdateProject, tc.config, tc.body, inProject(tc.org, tc.proj)))
			reqs := b.api.requests()
			require.Len(t, reqs, 1)
			require.Equal(t, "PATCH "+tc.wantPath, reqs[0].key())
			require.Empty(t, reqs[0].RawQuery)
			requireAPIHeaders(t, reqs[0], testToken)
			requireJSON(t, tc.wantPatch, reqs[0].Body)
		})
	}
}

func TestUpdateProjectMissingPointerInBodyIsPermanent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	err := b.run(t, ActionUpdateProject, `[{"path": "/x", "from": "/payload/does/not/exist"}]`, `{"foo": "bar"}`)
	requirePermanent(t, err)
	require.ErrorIs(t, err, ErrPointerNotFound)
	require.Contains(t, err.Error(), `"/payload/does/not/exist"`, "the pointer is named")
	require.Empty(t, b.api.requests(), "nothing is sent when a selector misses")
}

// --- ImbiClientPatchProjectTests (outcomes instead of log lines) --------

func TestUpdateProjectAPIOutcomes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		reply     apiReply
		permanent bool
		wantErr   string
	}{
		{name: "success", reply: apiReply{Status: 200, Body: `{}`}},
		{name: "422 with JSON detail is permanent", reply: apiReply{Status: 422, Body: `{"detail": "invalid"}`},
			permanent: true, wantErr: `{"detail": "invalid"}`},
		{name: "500 with non-JSON body is retryable", reply: apiReply{Status: 500, Body: "Internal Server Error",
			Header: map[string]string{"Content-Type": "text/plain"}}, wantErr: "Internal Server Error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.api.on("PATCH /organizations/org/projects/proj", tc.reply)
			err := b.run(t, ActionUpdateProject, `[]`, `{}`)
			switch {
			case tc.wantErr == "":
				require.NoError(t, err)
			case tc.permanent:
				requirePermanent(t, err)
			default:
				requireRetryable(t, err)
			}
			if tc.wantErr != "" {
				require.Contains(t, err.Error(), "PATCH /organizations/org/projects/proj")
				require.Contains(t, err.Error(), tc.wantErr)
			}
		})
	}
}

// --- CreateReleaseTests ----------------------------------------------------

func TestCreateRelease(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		config   string
		body     string
		opts     []invokeOpt
		wantBody string
	}{
		{
			name: "happy path includes user id", config: createReleaseConfig, body: deploymentBody,
			opts:     []invokeOpt{asUser("alice@example.com")},
			wantBody: `{"committish":"abcdef1","title":"v1.2.3","tag":"v1.2.3","created_by":"alice@example.com"}`,
		},
		{
			name: "no user omits created_by", config: createReleaseConfig, body: deploymentBody,
			wantBody: `{"committish":"abcdef1","title":"v1.2.3","tag":"v1.2.3"}`,
		},
		{
			name: "omits tag when version_expression absent",
			config: `{"title_selector": "/payload/deployment/ref",
				"committish_expression": "substring(payload.deployment.sha, 0, 7)"}`,
			body: deploymentBody, wantBody: `{"committish":"abcdef1","title":"v1.2.3"}`,
		},
		{
			name: "title selector used",
			config: `{"title_selector": "/payload/deployment/description", "version_expression": "payload.deployment.ref",
				"committish_expression": "substring(payload.deployment.sha, 0, 7)"}`,
			body: deploymentBody, wantBody: `{"committish":"abcdef1","title":"Deployed v1.2.3 to production","tag":"v1.2.3"}`,
		},
		{
			name: "version expression evaluated: not semver gives sha- tag",
			config: mustJSON(map[string]string{
				"title_selector":        "/payload/deployment/ref",
				"committish_expression": "payload.deployment.sha",
				"version_expression":    "payload.deployment.ref.matches('^[0-9]+[.][0-9]+[.][0-9]+$') ? payload.deployment.ref : 'sha-' + payload.deployment.sha",
			}),
			body:     `{"deployment": {"ref": "feature/x", "sha": "abcdef1234"}}`,
			wantBody: `{"committish":"abcdef1234","title":"feature/x","tag":"sha-abcdef1234"}`,
		},
		{
			name: "version expression evaluated: semver is the tag",
			config: mustJSON(map[string]string{
				"title_selector":        "/payload/deployment/ref",
				"committish_expression": "payload.deployment.sha",
				"version_expression":    "payload.deployment.ref.matches('^[0-9]+[.][0-9]+[.][0-9]+$') ? payload.deployment.ref : 'sha-' + payload.deployment.sha",
			}),
			body:     `{"deployment": {"ref": "1.2.3", "sha": "abcdef1234"}}`,
			wantBody: `{"committish":"abcdef1234","title":"1.2.3","tag":"1.2.3"}`,
		},
		{
			name: "substring function form",
			config: `{"title_selector": "/payload/deployment/ref", "version_expression": "payload.deployment.ref",
				"committish_expression": "substring(payload.deployment.sha, 0, 7)"}`,
			body:     `{"deployment": {"ref": "main", "sha": "abcdef1234567890"}}`,
			wantBody: `{"committish":"abcdef1","title":"main","tag":"main"}`,
		},
		{
			name: "substring method form",
			config: `{"title_selector": "/payload/deployment/ref", "version_expression": "payload.deployment.ref",
				"committish_expression": "payload.deployment.sha.substring(0, 7)"}`,
			body:     `{"deployment": {"ref": "main", "sha": "abcdef1234567890"}}`,
			wantBody: `{"committish":"abcdef1","title":"main","tag":"main"}`,
		},
		{
			name: "substring with only start",
			config: `{"title_selector": "/payload/deployment/ref", "version_expression": "payload.deployment.ref",
				"committish_expression": "payload.deployment.sha.substring(8)"}`,
			body:     `{"deployment": {"ref": "main", "sha": "abcdef1234567890"}}`,
			wantBody: `{"committish":"34567890","title":"main","tag":"main"}`,
		},
		{
			name: "null version expression omits tag",
			config: `{"title_selector": "/payload/deployment/ref",
				"version_expression": "payload.deployment.ref.matches('^[0-9]+[.][0-9]+[.][0-9]+$') ? payload.deployment.ref : null",
				"committish_expression": "substring(payload.deployment.sha, 0, 7)"}`,
			body:     `{"deployment": {"ref": "main", "sha": "abcdef1234567890"}}`,
			wantBody: `{"committish":"abcdef1","title":"main"}`,
		},
		{
			name: "non-string title is rendered as Python str()",
			config: `{"title_selector": "/payload/deployment/creator/id",
				"committish_expression": "substring(payload.deployment.sha, 0, 7)"}`,
			body: deploymentBody, wantBody: `{"committish":"abcdef1","title":"12345"}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			require.NoError(t, b.run(t, ActionCreateRelease, tc.config, tc.body, tc.opts...))
			reqs := b.api.requests()
			require.Len(t, reqs, 1)
			require.Equal(t, "POST /organizations/org/projects/proj/releases/", reqs[0].key())
			requireAPIHeaders(t, reqs[0], testToken)
			requireJSON(t, tc.wantBody, reqs[0].Body)
		})
	}
}

func TestCreateReleaseCommittishExpressionIsRequired(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.actions[ActionCreateRelease].DecodeConfig(json.RawMessage(
		`{"title_selector": "/payload/deployment/ref", "version_expression": "payload.deployment.ref"}`))
	var ce *plugins.ConfigError
	require.ErrorAs(t, err, &ce)
	require.Contains(t, err.Error(), "committish_expression")
}

func TestCreateReleaseNullCommittishSkipsRelease(t *testing.T) {
	t.Parallel()
	b := setup(t)
	err := b.run(t, ActionCreateRelease, `{"title_selector": "/payload/deployment/ref",
		"version_expression": "payload.deployment.ref",
		"committish_expression": "payload.deployment.sha != '' ? payload.deployment.sha : null"}`,
		`{"deployment": {"ref": "v1.2.3", "sha": ""}}`)
	require.NoError(t, err, "a null committish is a skip, not a failure")
	require.Empty(t, b.api.requests())
	require.Contains(t, b.logs(), "level=WARN")
	require.Contains(t, b.logs(), "committish expression evaluated to null")
}

func TestCreateReleaseInvalidExpressionIsPermanent(t *testing.T) {
	t.Parallel()
	tests := []struct{ field, config string }{
		{field: "version_expression", config: `{"title_selector": "/payload/deployment/ref",
			"version_expression": "this is not valid CEL",
			"committish_expression": "substring(payload.deployment.sha, 0, 7)"}`},
		{field: "committish_expression", config: `{"title_selector": "/payload/deployment/ref",
			"version_expression": "payload.deployment.ref", "committish_expression": "this is not valid CEL"}`},
		{field: "committish_expression", config: `{"title_selector": "/payload/deployment/ref",
			"committish_expression": "payload.deployment.missing_field"}`},
	}
	for _, tc := range tests {
		t.Run(tc.field, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			err := b.run(t, ActionCreateRelease, tc.config, deploymentBody)
			requirePermanent(t, err)
			var ce *CELError
			require.ErrorAs(t, err, &ce)
			require.Contains(t, err.Error(), tc.field)
			require.Empty(t, b.api.requests())
		})
	}
}

func TestCreateReleaseTitleSelectorMissIsPermanent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	err := b.run(t, ActionCreateRelease, `{"title_selector": "/payload/deployment/nope",
		"committish_expression": "substring(payload.deployment.sha, 0, 7)"}`, deploymentBody)
	requirePermanent(t, err)
	require.ErrorIs(t, err, ErrPointerNotFound)
	require.Contains(t, err.Error(), `title_selector: JSON Pointer "/payload/deployment/nope"`)
}

func TestCreateRelease409IsIdempotent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.api.on("POST /organizations/org/projects/proj/releases/", apiReply{Status: 409, Body: `{"detail": "exists"}`})
	require.NoError(t, b.run(t, ActionCreateRelease, createReleaseConfig, deploymentBody))
	require.Len(t, b.api.requests(), 1)
	require.Contains(t, b.logs(), "level=DEBUG")
	require.Contains(t, b.logs(), "already exists")
	require.NotContains(t, b.logs(), "level=WARN")
}

// --- AddDeploymentEventTests -----------------------------------------------

func TestAddDeploymentEvent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		config    string
		body      string
		wantQuery string
		wantPost  string
		wantBody  string
	}{
		{
			name: "status mapping", config: deploymentEventConfig, body: statusBody,
			wantQuery: "committish=abcdef1&tag=v1.2.3",
			wantPost:  "POST /organizations/org/projects/proj/releases/" + testReleaseID + "/environments/production",
			wantBody:  `{"status": "success"}`,
		},
		{
			name: "lookup uses committish only when version absent",
			config: `{"environment_selector": "/payload/deployment_status/environment",
				"committish_expression": "substring(payload.deployment.sha, 0, 7)",
				"status_selector": "/payload/deployment_status/state"}`,
			body: statusBody, wantQuery: "committish=abcdef1",
			wantPost: "POST /organizations/org/projects/proj/releases/" + testReleaseID + "/environments/production",
			wantBody: `{"status": "success"}`,
		},
		{
			name: "lookup drops tag when version expression yields null",
			config: `{"environment_selector": "/payload/deployment_status/environment",
				"committish_expression": "substring(payload.deployment.sha, 0, 7)",
				"version_expression": "payload.deployment.ref.matches('^[0-9]+[.][0-9]+[.][0-9]+$') ? payload.deployment.ref : null",
				"status_selector": "/payload/deployment_status/state"}`,
			body: `{"deployment": {"ref": "main", "sha": "abcdef1234567890"},
				"deployment_status": {"state": "success", "environment": "production"}}`,
			wantQuery: "committish=abcdef1",
			wantPost:  "POST /organizations/org/projects/proj/releases/" + testReleaseID + "/environments/production",
			wantBody:  `{"status": "success"}`,
		},
		{
			name: "note selector emits note",
			config: `{"environment_selector": "/payload/deployment_status/environment",
				"committish_expression": "substring(payload.deployment.sha, 0, 7)",
				"version_expression": "payload.deployment.ref",
				"status_selector": "/payload/deployment_status/state",
				"note_selector": "/payload/deployment/url"}`,
			body: statusBody, wantQuery: "committish=abcdef1&tag=v1.2.3",
			wantPost: "POST /organizations/org/projects/proj/releases/" + testReleaseID + "/environments/production",
			wantBody: `{"status": "success", "note": "https://api.github.com/repos/o/r/deployments/42"}`,
		},
		{
			name: "external run id selector",
			config: `{"environment_selector": "/payload/deployment_status/environment",
				"committish_expression": "substring(payload.deployment.sha, 0, 7)",
				"status_selector": "/payload/deployment_status/state",
				"external_run_id_selector": "/payload/workflow_run/id"}`,
			body: `{"deployment": {"sha": "abcdef1234567890"}, "workflow_run": {"id": 987654321},
				"deployment_status": {"state": "in_progress", "environment": "staging"}}`,
			wantQuery: "committish=abcdef1",
			wantPost:  "POST /organizations/org/projects/proj/releases/" + testReleaseID + "/environments/staging",
			wantBody:  `{"status": "in_progress", "external_run_id": "987654321"}`,
		},
		{
			name: "failure state maps to failed", config: deploymentEventConfig, body: withStatus("failure"),
			wantQuery: "committish=abcdef1&tag=v1.2.3",
			wantPost:  "POST /organizations/org/projects/proj/releases/" + testReleaseID + "/environments/production",
			wantBody:  `{"status": "failed"}`,
		},
		{
			name: "environment with a slash stays one path segment",
			config: `{"environment_selector": "/payload/env", "committish_expression": "'abcdef1'",
				"status_selector": "/payload/state"}`,
			body: `{"env": "eu/prod", "state": "success"}`, wantQuery: "committish=abcdef1",
			wantPost: "POST /organizations/org/projects/proj/releases/" + testReleaseID + "/environments/eu/prod",
			wantBody: `{"status": "success"}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			require.NoError(t, b.run(t, ActionAddDeploymentEvent, tc.config, tc.body))
			reqs := b.api.requests()
			require.Len(t, reqs, 2)
			require.Equal(t, "GET /organizations/org/projects/proj/releases/", reqs[0].key())
			require.Equal(t, tc.wantQuery, reqs[0].RawQuery)
			requireAPIHeaders(t, reqs[0], testToken)
			require.Equal(t, tc.wantPost, reqs[1].key())
			requireAPIHeaders(t, reqs[1], testToken)
			requireJSON(t, tc.wantBody, reqs[1].Body)
		})
	}
}

func TestAddDeploymentEventEnvironmentSlashIsEscaped(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.NoError(t, b.run(t, ActionAddDeploymentEvent, `{"environment_selector": "/payload/env",
		"committish_expression": "'abcdef1'", "status_selector": "/payload/state"}`,
		`{"env": "eu/prod", "state": "success"}`))
	reqs := b.api.requests()
	require.Len(t, reqs, 2)
	require.Equal(t, "/organizations/org/projects/proj/releases/"+testReleaseID+"/environments/eu%2Fprod", reqs[1].RawPath)
}

func TestAddDeploymentEventCommittishExpressionIsRequired(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.actions[ActionAddDeploymentEvent].DecodeConfig(json.RawMessage(`{
		"environment_selector": "/payload/deployment_status/environment",
		"version_expression": "payload.deployment.ref",
		"status_selector": "/payload/deployment_status/state"}`))
	var ce *plugins.ConfigError
	require.ErrorAs(t, err, &ce)
}

func TestAddDeploymentEventSkips(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		config  string
		body    string
		wantLog []string
	}{
		{
			name: "null committish expression skips event",
			config: `{"environment_selector": "/payload/deployment_status/environment",
				"committish_expression": "payload.deployment.sha != '' ? payload.deployment.sha : null",
				"status_selector": "/payload/deployment_status/state"}`,
			body: `{"deployment": {"ref": "v1.2.3", "sha": ""},
				"deployment_status": {"state": "success", "environment": "production"}}`,
			wantLog: []string{"committish expression evaluated to null"},
		},
		{
			name: "unknown state skipped", config: deploymentEventConfig, body: withStatus("frobbed"),
			wantLog: []string{"Unmapped deployment status", "frobbed"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			require.NoError(t, b.run(t, ActionAddDeploymentEvent, tc.config, tc.body), "a skip is not a failure")
			require.Empty(t, b.api.requests(), "neither the lookup nor the POST is sent")
			require.Contains(t, b.logs(), "level=WARN")
			for _, s := range tc.wantLog {
				require.Contains(t, b.logs(), s)
			}
		})
	}
}

// Python warned and dropped; with a queue the status may have overtaken
// its create_release, so the worker retries and dead-letters at the end.
func TestAddDeploymentEventNoMatchingReleaseRetries(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.api.on("GET /organizations/org/projects/proj/releases/", apiReply{Status: 200, Body: `[]`})
	err := b.run(t, ActionAddDeploymentEvent, deploymentEventConfig, statusBody)
	requireRetryable(t, err)
	require.ErrorIs(t, err, ErrNoMatchingRelease)
	require.Contains(t, err.Error(), `committish="abcdef1" tag="v1.2.3"`)
	reqs := b.api.requests()
	require.Len(t, reqs, 1, "no POST without a release")
	require.Contains(t, b.logs(), "No release matches")
}

// Python logged "Release ... missing"; the worker dead-letters it at once
// with the reason in the error.
func TestAddDeploymentEventReleaseMissingIsPermanent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.api.on("POST /organizations/org/projects/proj/releases/"+testReleaseID+"/environments/production",
		apiReply{Status: 404, Body: `{"detail": "missing"}`})
	err := b.run(t, ActionAddDeploymentEvent, deploymentEventConfig, statusBody)
	requirePermanent(t, err)
	require.ErrorIs(t, err, ErrReleaseMissing)
	require.Contains(t, err.Error(), `release "`+testReleaseID+`" of project proj not found`)
	require.Contains(t, err.Error(), `"success" dropped`)
}

func TestAddDeploymentEventSelectorMissIsPermanent(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, config, field string }{
		{name: "status", field: "status_selector", config: `{"environment_selector": "/payload/deployment_status/environment",
			"committish_expression": "'abcdef1'", "status_selector": "/payload/nope"}`},
		{name: "environment", field: "environment_selector", config: `{"environment_selector": "/payload/nope",
			"committish_expression": "'abcdef1'", "status_selector": "/payload/deployment_status/state"}`},
		{name: "note", field: "note_selector", config: `{"environment_selector": "/payload/deployment_status/environment",
			"committish_expression": "'abcdef1'", "status_selector": "/payload/deployment_status/state",
			"note_selector": "/payload/nope"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			err := b.run(t, ActionAddDeploymentEvent, tc.config, statusBody)
			requirePermanent(t, err)
			require.ErrorIs(t, err, ErrPointerNotFound)
			require.Contains(t, err.Error(), tc.field+`: JSON Pointer "/payload/nope"`)
			require.Empty(t, b.api.requests())
		})
	}
}

// --- StatusMapTests ---------------------------------------------------------

func TestStatusMapAllKnownStates(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"queued": "pending", "pending": "pending", "in_progress": "in_progress", "success": "success",
		"failure": "failed", "error": "failed", "inactive": "rolled_back",
	}
	require.Equal(t, cases, statusMap, "the map is exactly imbi-gateway's")
	for state, want := range cases {
		t.Run(state, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			require.NoError(t, b.run(t, ActionAddDeploymentEvent, deploymentEventConfig, withStatus(state), inProject("o", "p")))
			reqs := b.api.requests()
			require.Len(t, reqs, 2)
			requireJSON(t, fmt.Sprintf(`{"status": %q}`, want), reqs[1].Body)
		})
	}
}

// --- ImbiClient{CreateRelease,RecordDeployment,ListReleases,PutSbom}Tests ---

func TestClientCalls(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rt, err := newRuntime(Plugin{Getenv: func(k string) string { return b.env[k] }})
	require.NoError(t, err)
	ep, err := rt.endpoint(nil)
	require.NoError(t, err)
	ctx := t.Context()

	ids, err := rt.api.ListReleases(ctx, ep, "org", "proj", nil, nil)
	require.NoError(t, err)
	require.Equal(t, []string{testReleaseID}, ids)

	committish, tag := "abcdef1", "v1.2.3"
	_, err = rt.api.ListReleases(ctx, ep, "org", "proj", &committish, &tag)
	require.NoError(t, err)

	id, created, err := rt.api.CreateRelease(ctx, ep, "myorg", "proj-42", releaseCreate{Committish: "abcdef1", Title: "t"})
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, "rel-new", id)

	require.NoError(t, rt.api.RecordDeployment(ctx, ep, "o", "p", testReleaseID, "prod", deploymentEvent{Status: "success"}))
	sbom := map[string]any{"bomFormat": "CycloneDX", "specVersion": "1.7"}
	require.NoError(t, rt.api.PutSBOM(ctx, ep, "myorg", "proj-1", "rel-1", sbom))

	reqs := b.api.requests()
	require.Len(t, reqs, 5)
	require.Equal(t, "GET /organizations/org/projects/proj/releases/", reqs[0].key())
	require.Empty(t, reqs[0].RawQuery, "no filters, no query")
	require.Equal(t, "committish=abcdef1&tag=v1.2.3", reqs[1].RawQuery)
	require.Equal(t, "POST /organizations/myorg/projects/proj-42/releases/", reqs[2].key())
	requireJSON(t, `{"committish":"abcdef1","title":"t"}`, reqs[2].Body)
	require.Equal(t, "POST /organizations/o/projects/p/releases/"+testReleaseID+"/environments/prod", reqs[3].key())
	requireJSON(t, `{"status":"success"}`, reqs[3].Body)
	require.Equal(t, "PUT /organizations/myorg/projects/proj-1/releases/rel-1/sbom", reqs[4].key())
	requireJSON(t, `{"bomFormat":"CycloneDX","specVersion":"1.7"}`, reqs[4].Body)
	for _, r := range reqs {
		requireAPIHeaders(t, r, testToken)
	}
}
