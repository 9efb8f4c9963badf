package gatewayactions

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aweber-imbi/imbi-worker/plugins"
)

// Environment variables imbi-gateway's ActionSettings read (prefix
// ACTIONS_); same names so one deployment config serves both.
const (
	EnvImbiURL   = "ACTIONS_IMBI_URL"
	EnvImbiToken = "ACTIONS_IMBI_TOKEN"
	// DefaultImbiURL is ActionSettings.imbi_url's default.
	DefaultImbiURL = "http://imbi-api:8000"
)

// Credential field names when the plugin is built with
// CredentialsFromPlugin (see Plugin).
const (
	CredentialURL   = "url"
	CredentialToken = "token"
)

const (
	// maxErrorDetail bounds how much of an API error body goes into an
	// error text (and so into a dead-letter header).
	maxErrorDetail = 512
	// maxResponseBody bounds what we read from imbi-api; release lists
	// and created releases are small.
	maxResponseBody = 4 << 20
	// maxRetryAfter caps a server's Retry-After so a bad header cannot
	// park a message for days.
	maxRetryAfter = time.Hour
	// fallbackTimeout applies only when the caller's ctx has no deadline;
	// the worker always sets one (the action timeout).
	fallbackTimeout = 30 * time.Second
)

// ErrReleaseMissing matches the permanent error of a deployment event or
// SBoM whose release imbi-api reports missing (404).
var ErrReleaseMissing = errors.New("release missing")

// ErrNoMatchingRelease matches the (retryable) error of a lookup that found
// no release: with a queue between webhooks, the deployment_status event can
// overtake the create_release of the same deployment, so the worker retries
// with backoff and dead-letters after the last attempt.
var ErrNoMatchingRelease = errors.New("no matching release")

// APIError is a non-success answer from imbi-api. It carries the request
// line and a bounded excerpt of the response body, never the token.
type APIError struct {
	Method string
	Path   string
	Status int
	Detail string
}

func (e *APIError) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("imbi-api %s %s: %d %s", e.Method, e.Path, e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("imbi-api %s %s: %d %s: %s", e.Method, e.Path, e.Status, http.StatusText(e.Status), e.Detail)
}

// endpoint is where and as whom to call imbi-api for one invocation.
type endpoint struct {
	base  *url.URL
	token string
}

// imbiClient is imbi-gateway's ImbiClient: one shared http.Client (so
// connections are reused across actions), per-call endpoint.
type imbiClient struct {
	http      *http.Client
	userAgent string
}

// userAgent is "imbi-worker/<version>", from the binary's build info:
// the main module's version when the go command stamped one, else the
// VCS revision (12 hex digits, "-dirty" for a modified tree), else "dev"
// (tests). The plugin does not import the cli package for cli.Version:
// a plugin must not depend on the command that hosts it.
func userAgent() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "imbi-worker/dev"
	}
	return "imbi-worker/" + buildVersion(bi)
}

func buildVersion(bi *debug.BuildInfo) string {
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev == "" {
		return "dev"
	}
	return rev[:min(12, len(rev))] + dirty
}

// call sends one request and classifies the answer for the worker:
//   - 2xx, and any status in ok: nil error, the status and body returned;
//   - 429 and 503: plugins.RetryAfter honouring Retry-After (seconds or an
//     HTTP date), *plugins.PluginUnavailableError when the header is absent;
//   - other 5xx, network errors: *plugins.PluginUnavailableError (retry);
//   - other 4xx: plugins.Permanent.
func (c *imbiClient) call(ctx context.Context, ep endpoint, method, path string, query url.Values, body any, ok ...int) (int, []byte, error) {
	var reqBody io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, plugins.Permanent(fmt.Errorf("encode %s %s body: %w", method, path, err))
		}
		reqBody = bytes.NewReader(b)
	}
	base := *ep.base
	base.RawQuery, base.Fragment = "", ""
	target := strings.TrimRight(base.String(), "/") + path
	if q := query.Encode(); q != "" {
		target += "?" + q
	}

	if _, has := ctx.Deadline(); !has {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, fallbackTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, method, target, reqBody)
	if err != nil {
		return 0, nil, plugins.Permanent(fmt.Errorf("build %s %s: %w", method, path, err))
	}
	req.Header.Set("Authorization", "Bearer "+ep.token)
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return 0, nil, fmt.Errorf("imbi-api %s %s: %w", method, path, ctxErr)
		}
		// net/http strips any password from the URL in its errors; the
		// token is a header and never appears.
		return 0, nil, unavailable(fmt.Errorf("imbi-api %s %s: %w", method, path, err))
	}
	defer resp.Body.Close()
	respBody, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("imbi-api %s %s: read response: %w", method, path, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, respBody, nil
	}
	for _, s := range ok {
		if resp.StatusCode == s {
			return resp.StatusCode, respBody, nil
		}
	}
	apiErr := &APIError{Method: method, Path: path, Status: resp.StatusCode, Detail: errorDetail(respBody, ep.token)}
	return resp.StatusCode, respBody, classify(apiErr, resp.Header.Get("Retry-After"), time.Now())
}

// classify maps an API error to the worker's outcome classes: 429/503
// with a usable Retry-After are rate_limited with that delay; without one
// (a zero delay would redeliver at once, in a loop) they join the other
// 5xx as unavailable, retried with the worker's backoff; every other
// status is permanent.
func classify(e *APIError, retryAfter string, now time.Time) error {
	switch {
	case e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable:
		if d, ok := parseRetryAfter(retryAfter, now); ok {
			return plugins.RetryAfter(e, d)
		}
		return unavailable(e)
	case e.Status >= 500:
		return unavailable(e)
	default:
		return plugins.Permanent(e)
	}
}

// unavailable marks err retryable with the worker's reason "unavailable".
func unavailable(err error) error {
	return &plugins.PluginUnavailableError{Message: err.Error(), Err: err}
}

// parseRetryAfter reads RFC 9110 Retry-After: delay-seconds or an
// HTTP-date. A date in the past means "now" (0). Values are capped at
// maxRetryAfter.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter, true
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = max(t.Sub(now), 0)
	} else {
		return 0, false
	}
	return min(d, maxRetryAfter), true
}

// errorDetail is a bounded, single-line excerpt of an error body with the
// token blanked out should the API ever echo it.
func errorDetail(body []byte, token string) string {
	s := strings.TrimSpace(string(body))
	if token != "" {
		s = strings.ReplaceAll(s, token, "[redacted]")
	}
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxErrorDetail {
		cut := maxErrorDetail
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// seg escapes one path segment (slugs and ids come from the event and the
// API; a "/" in them must not change the route).
func seg(s string) string { return url.PathEscape(s) }

func projectPath(org, project string) string {
	return "/organizations/" + seg(org) + "/projects/" + seg(project)
}

// patchOp is one RFC 6902 operation; field order is the Python dict's.
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// PatchProject is PATCH /organizations/{org}/projects/{id}.
func (c *imbiClient) PatchProject(ctx context.Context, ep endpoint, org, project string, ops []patchOp) error {
	_, _, err := c.call(ctx, ep, http.MethodPatch, projectPath(org, project), nil, ops)
	return err
}

// releaseCreate is imbi-api's ReleaseCreate body as the actions send it;
// field order is the Python dict's.
type releaseCreate struct {
	Committish string  `json:"committish"`
	Title      string  `json:"title"`
	Tag        *string `json:"tag,omitempty"`
	CreatedBy  *string `json:"created_by,omitempty"`
}

// CreateRelease is POST .../releases/. A 409 (the release exists) is not
// an error: created is false and id is empty.
func (c *imbiClient) CreateRelease(ctx context.Context, ep endpoint, org, project string, body releaseCreate) (id string, created bool, err error) {
	status, resp, err := c.call(ctx, ep, http.MethodPost, projectPath(org, project)+"/releases/", nil, body, http.StatusConflict)
	if err != nil {
		return "", false, err
	}
	if status == http.StatusConflict {
		return "", false, nil
	}
	var r struct {
		ID any `json:"id"`
	}
	if len(bytes.TrimSpace(resp)) > 0 {
		if err := json.Unmarshal(resp, &r); err != nil {
			return "", true, fmt.Errorf("imbi-api POST %s/releases/: decode response: %w", projectPath(org, project), err)
		}
	}
	if r.ID == nil {
		return "", true, nil
	}
	return pyStr(r.ID), true, nil
}

// ListReleases is GET .../releases/?committish=&tag= (filters only when
// set). It returns the releases' ids in the API's order.
func (c *imbiClient) ListReleases(ctx context.Context, ep endpoint, org, project string, committish, tag *string) ([]string, error) {
	q := url.Values{}
	if committish != nil {
		q.Set("committish", *committish)
	}
	if tag != nil {
		q.Set("tag", *tag)
	}
	path := projectPath(org, project) + "/releases/"
	_, resp, err := c.call(ctx, ep, http.MethodGet, path, q, nil)
	if err != nil {
		return nil, err
	}
	var releases []struct {
		ID any `json:"id"`
	}
	if err := json.Unmarshal(resp, &releases); err != nil {
		// A 2xx that is not a JSON array is an API fault, likely a
		// proxy page during a deploy: retry.
		return nil, fmt.Errorf("imbi-api GET %s: response is not a release list: %w", path, err)
	}
	ids := make([]string, 0, len(releases))
	for _, r := range releases {
		if r.ID != nil {
			ids = append(ids, pyStr(r.ID))
		}
	}
	return ids, nil
}

// deploymentEvent is imbi-api's DeploymentEventInput.
type deploymentEvent struct {
	Status        string  `json:"status"`
	Note          *string `json:"note,omitempty"`
	ExternalRunID *string `json:"external_run_id,omitempty"`
}

// RecordDeployment is POST .../releases/{id}/environments/{env}. A 404
// means the release is gone: permanent, matched by ErrReleaseMissing.
func (c *imbiClient) RecordDeployment(ctx context.Context, ep endpoint, org, project, releaseID, env string, body deploymentEvent) error {
	path := projectPath(org, project) + "/releases/" + seg(releaseID) + "/environments/" + seg(env)
	status, _, err := c.call(ctx, ep, http.MethodPost, path, nil, body)
	if status == http.StatusNotFound {
		return plugins.Permanent(fmt.Errorf("%w: release %q of project %s not found; deployment status %q dropped: %w",
			ErrReleaseMissing, releaseID, project, body.Status, err))
	}
	return err
}

// PutSBOM is PUT .../releases/{id}/sbom with the document unchanged.
func (c *imbiClient) PutSBOM(ctx context.Context, ep endpoint, org, project, releaseID string, sbom map[string]any) error {
	path := projectPath(org, project) + "/releases/" + seg(releaseID) + "/sbom"
	status, _, err := c.call(ctx, ep, http.MethodPut, path, nil, sbom)
	if status == http.StatusNotFound {
		return plugins.Permanent(fmt.Errorf("%w: release %q of project %s not found; SBoM dropped: %w",
			ErrReleaseMissing, releaseID, project, err))
	}
	return err
}
