package gatewayactions

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/plugins"
)

// The worker's outcome class for every imbi-api answer (issue 7 item 4).
func TestAPIOutcomeMapping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		reply      apiReply
		wantClass  string // ok, permanent, retry, rate
		wantAfter  time.Duration
		afterSlack time.Duration
		// dateIn: Retry-After is an HTTP date this far ahead, written when
		// the subtest runs (parallel subtests may start seconds after the
		// table is built on a loaded machine).
		dateIn time.Duration
	}{
		{name: "201 created", reply: apiReply{Status: 201, Body: `{"id":"r"}`}, wantClass: "ok"},
		{name: "409 on create is idempotent success", reply: apiReply{Status: 409, Body: `{"detail":"exists"}`}, wantClass: "ok"},
		{name: "400", reply: apiReply{Status: 400, Body: `{"detail":"bad"}`}, wantClass: "permanent"},
		{name: "401", reply: apiReply{Status: 401}, wantClass: "permanent"},
		{name: "403", reply: apiReply{Status: 403}, wantClass: "permanent"},
		{name: "404", reply: apiReply{Status: 404}, wantClass: "permanent"},
		{name: "422", reply: apiReply{Status: 422, Body: `{"detail":[{"msg":"committish"}]}`}, wantClass: "permanent"},
		{name: "429 with seconds", reply: apiReply{Status: 429, Header: map[string]string{"Retry-After": "7"}},
			wantClass: "rate", wantAfter: 7 * time.Second},
		{name: "503 with HTTP date", reply: apiReply{Status: 503}, dateIn: 90 * time.Second,
			wantClass: "rate", wantAfter: 90 * time.Second, afterSlack: 3 * time.Second},
		{name: "503 with absurd seconds is capped", reply: apiReply{Status: 503, Header: map[string]string{"Retry-After": "999999999"}},
			wantClass: "rate", wantAfter: maxRetryAfter},
		{name: "503 without Retry-After retries with backoff", reply: apiReply{Status: 503}, wantClass: "retry"},
		{name: "429 with garbage Retry-After retries with backoff", reply: apiReply{Status: 429,
			Header: map[string]string{"Retry-After": "soon"}}, wantClass: "retry"},
		{name: "500", reply: apiReply{Status: 500, Body: "boom"}, wantClass: "retry"},
		{name: "502", reply: apiReply{Status: 502}, wantClass: "retry"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			if tc.dateIn > 0 {
				tc.reply.Header = map[string]string{"Retry-After": time.Now().Add(tc.dateIn).UTC().Format(http.TimeFormat)}
			}
			b.api.on(routeCreate, tc.reply)
			err := b.run(t, ActionCreateRelease, createReleaseConfig, deploymentBody)
			switch tc.wantClass {
			case "ok":
				require.NoError(t, err)
			case "permanent":
				requirePermanent(t, err)
				var ae *APIError
				require.ErrorAs(t, err, &ae)
				require.Equal(t, tc.reply.Status, ae.Status)
			case "retry":
				requireRetryable(t, err)
				var rl *plugins.RateLimitedError
				require.False(t, errors.As(err, &rl), "no Retry-After: the worker's own backoff applies")
				require.ErrorIs(t, err, plugins.ErrPluginUnavailable, "reason unavailable")
				var ae *APIError
				require.ErrorAs(t, err, &ae)
				require.Equal(t, tc.reply.Status, ae.Status)
			case "rate":
				requireRetryable(t, err)
				var rl *plugins.RateLimitedError
				require.ErrorAs(t, err, &rl)
				require.InDelta(t, tc.wantAfter, rl.RetryAfter, float64(tc.afterSlack))
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 6, 5, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"0", 0, true},
		{"120", 2 * time.Minute, true},
		{" 5 ", 5 * time.Second, true},
		{"-1", 0, false},
		{"", 0, false},
		{"1.5", 0, false},
		{"Fri, 05 Jun 2026 12:00:30 GMT", 30 * time.Second, true},
		{"Fri, 05 Jun 2026 11:00:00 GMT", 0, true}, // in the past: now
		{"Friday, 05-Jun-26 12:01:00 GMT", time.Minute, true},
		{"Fri Jun  5 12:00:10 2026", 10 * time.Second, true},
		{"99999999999999999999", 0, false},
		{"86400", maxRetryAfter, true},
	}
	for _, tc := range tests {
		got, ok := parseRetryAfter(tc.in, now)
		require.Equal(t, tc.wantOK, ok, "%q", tc.in)
		require.Equal(t, tc.want, got, "%q", tc.in)
	}
}

// The token never appears in an error text, even when the API echoes it.
func TestTokenNeverInErrorText(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.api.on(routeCreate, apiReply{Status: 400, Body: `{"detail":"bad token Bearer ` + testToken + `"}`})
	err := b.run(t, ActionCreateRelease, createReleaseConfig, deploymentBody)
	requirePermanent(t, err)
	require.NotContains(t, err.Error(), testToken)
	require.Contains(t, err.Error(), "[redacted]")
	require.NotContains(t, b.logs(), testToken)
}

func TestErrorDetailIsBounded(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.api.on(routeCreate, apiReply{Status: 500, Body: strings.Repeat("é", 5000)})
	err := b.run(t, ActionCreateRelease, createReleaseConfig, deploymentBody)
	requireRetryable(t, err)
	require.Less(t, len(err.Error()), 1024, "dead-letter headers stay small")
	require.True(t, strings.HasSuffix(err.Error(), "…"))
}

func TestNetworkErrorIsRetryable(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.api.srv.Close() // nothing listens any more
	err := b.run(t, ActionCreateRelease, createReleaseConfig, deploymentBody)
	requireRetryable(t, err)
	require.ErrorIs(t, err, plugins.ErrPluginUnavailable)
	require.Contains(t, err.Error(), "imbi-api POST /organizations/org/projects/proj/releases/")
}

// The action deadline bounds the HTTP call.
func TestDeadlineBoundsTheCall(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.api.on(routeCreate, apiReply{Status: 201, Delay: 5 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := b.run(t, ActionCreateRelease, createReleaseConfig, deploymentBody, withContext(ctx))
	require.Less(t, time.Since(start), 3*time.Second)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	requireRetryable(t, err)
}

// One shared http.Client: sequential calls reuse one connection.
func TestConnectionReuse(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for range 5 {
		require.NoError(t, b.run(t, ActionAddDeploymentEvent, deploymentEventConfig, statusBody))
	}
	require.Len(t, b.api.requests(), 10)
	require.Equal(t, 1, b.api.connections(), "10 requests over one keep-alive connection")
}

func TestEndpointConfiguration(t *testing.T) {
	t.Parallel()
	t.Run("token missing is credentials_missing and sends nothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t, withEnv(EnvImbiToken, ""))
		err := b.run(t, ActionCreateRelease, createReleaseConfig, deploymentBody)
		var cm *plugins.PluginCredentialsMissing
		require.ErrorAs(t, err, &cm)
		require.Contains(t, err.Error(), EnvImbiToken)
		require.Empty(t, b.api.requests())
	})
	t.Run("URL with a path prefix", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.env[EnvImbiURL] = b.api.srv.URL + "/api/"
		b.api.on("POST /api/organizations/org/projects/proj/releases/", apiReply{Status: 201, Body: `{"id":"x"}`})
		require.NoError(t, b.run(t, ActionCreateRelease, createReleaseConfig, deploymentBody))
		require.Equal(t, "POST /api/organizations/org/projects/proj/releases/", b.api.requests()[0].key())
	})
	t.Run("URL that is not http(s) is permanent and not echoed with its password", func(t *testing.T) {
		t.Parallel()
		b := setup(t, withEnv(EnvImbiURL, "ftp://user:hunter2@imbi"))
		err := b.run(t, ActionCreateRelease, createReleaseConfig, deploymentBody)
		requirePermanent(t, err)
		require.NotContains(t, err.Error(), "hunter2")
	})
	t.Run("default URL when unset", func(t *testing.T) {
		t.Parallel()
		rt, err := newRuntime(Plugin{Getenv: func(k string) string {
			return map[string]string{EnvImbiToken: "t"}[k]
		}})
		require.NoError(t, err)
		ep, err := rt.endpoint(nil)
		require.NoError(t, err)
		require.Equal(t, DefaultImbiURL, ep.base.String())
	})
}

func TestCredentialsFromPlugin(t *testing.T) {
	t.Parallel()
	require.Empty(t, Plugin{}.Manifest().Credentials, "the shipped plugin declares no credentials")
	m := Plugin{CredentialsFromPlugin: true}.Manifest()
	require.Equal(t, []string{CredentialToken}, m.RequiredCredentials())
	require.Len(t, m.Credentials, 2)

	t.Run("token and url from the plugin's credentials", func(t *testing.T) {
		t.Parallel()
		b := setup(t, withCredentialsFromPlugin(), withEnv(EnvImbiToken, "env-token-unused"), withEnv(EnvImbiURL, "http://127.0.0.1:1"))
		creds := plugins.Credentials{CredentialToken: "cred-token", CredentialURL: b.api.srv.URL}
		require.NoError(t, b.run(t, ActionCreateRelease, createReleaseConfig, deploymentBody, withCreds(creds)))
		reqs := b.api.requests()
		require.Len(t, reqs, 1)
		requireAPIHeaders(t, reqs[0], "cred-token")
	})
	t.Run("url falls back to the environment", func(t *testing.T) {
		t.Parallel()
		b := setup(t, withCredentialsFromPlugin())
		require.NoError(t, b.run(t, ActionCreateRelease, createReleaseConfig, deploymentBody,
			withCreds(plugins.Credentials{CredentialToken: "cred-token"})))
		requireAPIHeaders(t, b.api.requests()[0], "cred-token")
	})
	t.Run("empty token credential is credentials_missing, env token not used", func(t *testing.T) {
		t.Parallel()
		b := setup(t, withCredentialsFromPlugin())
		err := b.run(t, ActionCreateRelease, createReleaseConfig, deploymentBody, withCreds(plugins.Credentials{}))
		var cm *plugins.PluginCredentialsMissing
		require.ErrorAs(t, err, &cm)
		require.Contains(t, err.Error(), fmt.Sprintf("%q", CredentialToken))
		require.Empty(t, b.api.requests())
	})
}

func TestBuildVersion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		bi   debug.BuildInfo
		want string
	}{
		{name: "stamped module version", bi: debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}}, want: "v1.4.0"},
		{name: "vcs revision", bi: debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "false"}}}, want: "0123456789ab"},
		{name: "dirty tree", bi: debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "true"}}}, want: "0123456789ab-dirty"},
		{name: "nothing known", bi: debug.BuildInfo{}, want: "dev"},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, buildVersion(&tc.bi), tc.name)
	}
}
