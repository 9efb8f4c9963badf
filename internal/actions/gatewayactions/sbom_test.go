package gatewayactions

// Ports of IngestSbomConfigTests, IngestSbomTests, IngestSbomAutoCreateTests
// and ImbiClientPutSbomTests (tests/gateway/test_actions.py, 06-05).

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

const sbomDoc = `{"bomFormat": "CycloneDX", "specVersion": "1.7", "version": 1, "components": []}`

func sbomEnvelope(version string, extra string) string {
	if extra != "" {
		extra = ", " + extra
	}
	return `{"repository": "org/repo", "version": "` + version + `", "sbom": ` + sbomDoc + extra + `}`
}

const (
	routeReleases = "GET /organizations/org/projects/proj/releases/"
	routeCreate   = "POST /organizations/org/projects/proj/releases/"
)

// --- IngestSbomConfigTests --------------------------------------------------

func TestIngestSbomConfig(t *testing.T) {
	t.Parallel()
	b := setup(t)
	desc := b.actions[ActionIngestSbom]

	cfg, err := desc.DecodeConfig(json.RawMessage(`{"version_expression": "payload.version"}`))
	require.NoError(t, err)
	require.Equal(t, IngestSbomConfig{VersionExpression: "payload.version", SbomSelector: "/payload"}, cfg,
		"sbom_selector defaults to the whole body")

	cfg, err = desc.DecodeConfig(json.RawMessage(`{"version_expression": "payload.version", "sbom_selector": "/payload/sbom"}`))
	require.NoError(t, err)
	require.Equal(t, Pointer("/payload/sbom"), cfg.(IngestSbomConfig).SbomSelector)

	cfg, err = desc.DecodeConfig(json.RawMessage(`{"version_expression": "payload.version", "sbom_selector": ""}`))
	require.NoError(t, err)
	require.Equal(t, Pointer(""), cfg.(IngestSbomConfig).SbomSelector, `an explicit "" is the whole event, not the default`)

	_, err = desc.DecodeConfig(json.RawMessage(`{}`))
	require.ErrorContains(t, err, "version_expression")
}

// --- IngestSbomTests ----------------------------------------------------------

func TestIngestSbomResolvesReleaseThenPutsSbom(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.api.on("GET /organizations/myorg/projects/proj-1/releases/", apiReply{Status: 200, Body: `[{"id": "rel-1", "tag": "2.0.0"}]`})
	require.NoError(t, b.run(t, ActionIngestSbom,
		`{"version_expression": "payload.version", "sbom_selector": "/payload/sbom"}`,
		sbomEnvelope("2.0.0", ""), inProject("myorg", "proj-1")))
	reqs := b.api.requests()
	require.Len(t, reqs, 2)
	require.Equal(t, "GET /organizations/myorg/projects/proj-1/releases/", reqs[0].key())
	require.Equal(t, "tag=2.0.0", reqs[0].RawQuery)
	require.Equal(t, "PUT /organizations/myorg/projects/proj-1/releases/rel-1/sbom", reqs[1].key())
	requireAPIHeaders(t, reqs[1], testToken)
	requireJSON(t, sbomDoc, reqs[1].Body)
}

func TestIngestSbomConditionalVersionExpression(t *testing.T) {
	t.Parallel()
	config := mustJSON(map[string]string{
		"version_expression": `payload.ref_name == "main" ? substring(payload.sha, 0, 7) : payload.ref_name`,
		"sbom_selector":      "/payload/sbom",
	})
	tests := []struct{ name, refName, wantQuery string }{
		{name: "main uses short sha", refName: "main", wantQuery: "tag=deadbee"},
		{name: "branch uses ref name", refName: "release/2.0.x", wantQuery: "tag=release%2F2.0.x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.api.on(routeReleases, apiReply{Status: 200, Body: `[{"id": "rel-1"}]`})
			body := `{"ref_name": "` + tc.refName + `", "sha": "deadbeef1234567890deadbeef1234567890dead", "sbom": ` + sbomDoc + `}`
			require.NoError(t, b.run(t, ActionIngestSbom, config, body))
			reqs := b.api.requests()
			require.Len(t, reqs, 2)
			require.Equal(t, tc.wantQuery, reqs[0].RawQuery)
		})
	}
}

// Every deliberate drop of the Python action is a success with a warning
// and no API call.
func TestIngestSbomDrops(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, config, body, wantLog string
	}{
		{name: "sbom is not an object", config: `{"version_expression": "payload.version", "sbom_selector": "/payload/sbom"}`,
			body: `{"version": "1.0.0", "sbom": "not a dict"}`, wantLog: "is not a JSON object"},
		{name: "sbom selector misses", config: `{"version_expression": "payload.version", "sbom_selector": "/payload/sbom"}`,
			body: `{"version": "1.0.0"}`, wantLog: "did not resolve"},
		{name: "version expression evaluates null", config: `{"version_expression": "payload.ref_name", "sbom_selector": "/payload/sbom"}`,
			body: `{"ref_name": null, "sbom": {"specVersion": "1.7"}}`, wantLog: "evaluated to null"},
		{name: "version expression fails to evaluate", config: `{"version_expression": "payload.nope", "sbom_selector": "/payload/sbom"}`,
			body: `{"sbom": {"specVersion": "1.7"}}`, wantLog: "SBoM dropped"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			require.NoError(t, b.run(t, ActionIngestSbom, tc.config, tc.body))
			require.Empty(t, b.api.requests())
			require.Contains(t, b.logs(), "level=WARN")
			require.Contains(t, b.logs(), tc.wantLog)
		})
	}
}

func TestIngestSbomVersionExpressionCompileErrorIsPermanent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	err := b.run(t, ActionIngestSbom, `{"version_expression": "not valid CEL ("}`, sbomEnvelope("1.0.0", ""))
	requirePermanent(t, err)
	require.Contains(t, err.Error(), "version_expression")
	require.Empty(t, b.api.requests())
}

// Python dropped the SBoM; the worker retries (the release may be created
// by a deployment still in the queue) and dead-letters at the end.
func TestIngestSbomReleaseMissingWithoutCommittishRetries(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.api.on(routeReleases, apiReply{Status: 200, Body: `[]`})
	err := b.run(t, ActionIngestSbom, `{"version_expression": "payload.version", "sbom_selector": "/payload/sbom"}`,
		sbomEnvelope("1.2.3", ""))
	requireRetryable(t, err)
	require.ErrorIs(t, err, ErrNoMatchingRelease)
	require.Len(t, b.api.requests(), 1, "lookup only, no PUT")
}

// Python logged the API error and returned; a 4xx is permanent here.
func TestIngestSbomAPIErrorIsPermanent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.api.on(routeReleases, apiReply{Status: 200, Body: `[{"id": "rel-1"}]`})
	b.api.on("PUT /organizations/org/projects/proj/releases/rel-1/sbom",
		apiReply{Status: 415, Body: "Unsupported spec version", Header: map[string]string{"Content-Type": "text/plain"}})
	err := b.run(t, ActionIngestSbom, `{"version_expression": "payload.version", "sbom_selector": "/payload/sbom"}`,
		sbomEnvelope("1.2.3", ""))
	requirePermanent(t, err)
	require.Contains(t, err.Error(), "PUT /organizations/org/projects/proj/releases/rel-1/sbom: 415")
	require.Contains(t, err.Error(), "Unsupported spec version")
	require.Len(t, b.api.requests(), 2)
}

// --- IngestSbomAutoCreateTests ------------------------------------------------

func autoCreateConfig(titleSelector string) string {
	c := map[string]string{
		"version_expression":    "payload.version",
		"sbom_selector":         "/payload/sbom",
		"committish_expression": "payload.committish",
	}
	if titleSelector != "" {
		c["title_selector"] = titleSelector
	}
	return mustJSON(c)
}

func TestIngestSbomAutoCreate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		config     string
		extra      string
		opts       []invokeOpt
		wantCreate string
	}{
		{name: "creates release when committish resolves", config: autoCreateConfig(""),
			extra:      `"committish": "abc1234567890def"`,
			wantCreate: `{"committish": "abc1234", "title": "Release 1.2.3", "tag": "1.2.3"}`},
		{name: "lowercases and truncates committish", config: autoCreateConfig(""),
			extra:      `"committish": "ABCDEF1234567890ABCDEF1234567890ABCDEF12"`,
			wantCreate: `{"committish": "abcdef1", "title": "Release 1.2.3", "tag": "1.2.3"}`},
		{name: "uses title selector when present", config: autoCreateConfig("/payload/title"),
			extra:      `"committish": "abc1234567890def", "title": "2026.05.26 build"`,
			wantCreate: `{"committish": "abc1234", "title": "2026.05.26 build", "tag": "1.2.3"}`},
		{name: "title selector miss falls back", config: autoCreateConfig("/payload/title"),
			extra:      `"committish": "abc1234567890def"`,
			wantCreate: `{"committish": "abc1234", "title": "Release 1.2.3", "tag": "1.2.3"}`},
		{name: "actor becomes created_by", config: autoCreateConfig(""),
			extra: `"committish": "abc1234567890def"`, opts: []invokeOpt{asUser("alice@example.com")},
			wantCreate: `{"committish": "abc1234", "title": "Release 1.2.3", "tag": "1.2.3", "created_by": "alice@example.com"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.api.on(routeReleases, apiReply{Status: 200, Body: `[]`})
			b.api.on(routeCreate, apiReply{Status: 201, Body: `{"id": "rel-new"}`})
			require.NoError(t, b.run(t, ActionIngestSbom, tc.config, sbomEnvelope("1.2.3", tc.extra), tc.opts...))
			reqs := b.api.requests()
			require.Len(t, reqs, 3)
			require.Equal(t, "tag=1.2.3", reqs[0].RawQuery)
			require.Equal(t, routeCreate, reqs[1].key())
			requireJSON(t, tc.wantCreate, reqs[1].Body)
			require.Equal(t, "PUT /organizations/org/projects/proj/releases/rel-new/sbom", reqs[2].key())
			requireJSON(t, sbomDoc, reqs[2].Body)
		})
	}
}

func TestIngestSbomAutoCreateDropsUnusableCommittish(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, extra string }{
		{name: "committish is not short hex", extra: `"committish": "main"`},
		{name: "committish expression cannot resolve", extra: ""},
		{name: "committish is null", extra: `"committish": null`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.api.on(routeReleases, apiReply{Status: 200, Body: `[]`})
			require.NoError(t, b.run(t, ActionIngestSbom, autoCreateConfig(""), sbomEnvelope("1.2.3", tc.extra)))
			reqs := b.api.requests()
			require.Len(t, reqs, 1, "lookup only: no create, no PUT")
			require.Contains(t, b.logs(), "did not resolve")
		})
	}
}

func TestIngestSbomAutoCreateHandles409ByRefetching(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.api.on(routeReleases, apiReply{Status: 200, Body: `[]`}, apiReply{Status: 200, Body: `[{"id": "rel-winning"}]`})
	b.api.on(routeCreate, apiReply{Status: 409, Body: "exists"})
	require.NoError(t, b.run(t, ActionIngestSbom, autoCreateConfig(""), sbomEnvelope("1.2.3", `"committish": "abc1234567890def"`)))
	reqs := b.api.requests()
	require.Len(t, reqs, 4)
	require.Equal(t, routeReleases, reqs[2].key())
	require.Equal(t, "PUT /organizations/org/projects/proj/releases/rel-winning/sbom", reqs[3].key())
}

// Python dropped on a create error; a 4xx from imbi-api is permanent.
func TestIngestSbomAutoCreateErrorIsPermanent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.api.on(routeReleases, apiReply{Status: 200, Body: `[]`})
	b.api.on(routeCreate, apiReply{Status: 422, Body: "invalid committish"})
	err := b.run(t, ActionIngestSbom, autoCreateConfig(""), sbomEnvelope("1.2.3", `"committish": "abc1234567890def"`))
	requirePermanent(t, err)
	require.Contains(t, err.Error(), "422")
	require.Len(t, b.api.requests(), 2, "no PUT")
}
