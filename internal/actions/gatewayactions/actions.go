package gatewayactions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"

	"github.com/aweber-imbi/imbi-worker/plugins"
)

// Outcomes, in the worker's classes (the Python actions logged and
// returned instead; a queue can retry and dead-letter, so it does):
//   - success: 2xx; 409 on a release create (idempotent); a CEL result of
//     null (skip with a warning, as d61cc673); an unmapped deployment
//     state (skip with a warning); and ingest_sbom's deliberate drops
//     (Python catches these: CEL evaluation error or null version, SBoM
//     selector miss, SBoM not an object, committish not 7 hex digits).
//   - permanent (dead-letter at once): a CEL compile error; a CEL
//     evaluation error or JSON Pointer miss where Python raised; imbi-api
//     4xx other than 409/429, 404 on a release as ErrReleaseMissing.
//   - retry: 429/503 after Retry-After; other 5xx; network errors; a
//     release lookup that found nothing (ErrNoMatchingRelease: the
//     release may still be on its way through the queue).
//   - credentials_missing: no imbi-api token configured.

// statusMap translates GitHub's deployment_status states to Imbi's
// deployment statuses (imbi-gateway _STATUS_MAP, exactly).
var statusMap = map[string]string{
	"queued":      "pending",
	"pending":     "pending",
	"in_progress": "in_progress",
	"success":     "success",
	"failure":     "failed",
	"error":       "failed",
	"inactive":    "rolled_back",
}

// committishPattern is imbi-api's Release.committish constraint.
var committishPattern = regexp.MustCompile(`^[0-9a-f]{7}$`)

// endpoint resolves imbi-api's address and token for one call: from the
// environment (ACTIONS_IMBI_URL, ACTIONS_IMBI_TOKEN), or from the
// plugin's credentials when the plugin is built to declare them.
func (rt *runtime) endpoint(creds plugins.Credentials) (endpoint, error) {
	rawURL := rt.getenv(EnvImbiURL)
	token := rt.getenv(EnvImbiToken)
	tokenSource := EnvImbiToken + " is not set"
	if rt.fromCreds {
		token = creds[CredentialToken]
		tokenSource = fmt.Sprintf("plugin credential %q is empty", CredentialToken)
		if u := creds[CredentialURL]; u != "" {
			rawURL = u
		}
	}
	if rawURL == "" {
		rawURL = DefaultImbiURL
	}
	if token == "" {
		return endpoint{}, &plugins.PluginCredentialsMissing{
			Message: "gateway-actions: no imbi-api token: " + tokenSource}
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		// The text may hold a password; do not echo it.
		return endpoint{}, plugins.Permanent(errors.New("gateway-actions: imbi-api URL is not a valid URL"))
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return endpoint{}, plugins.Permanent(fmt.Errorf("gateway-actions: imbi-api URL %q is not an absolute http(s) URL", u.Redacted()))
	}
	return endpoint{base: u, token: token}, nil
}

// selectorErr makes a pointer miss permanent and names the config field.
func selectorErr(field string, err error) error {
	return plugins.Permanent(fmt.Errorf("%s: %w", field, err))
}

// exprErr makes a CEL failure permanent (same event, same failure) and
// leaves a context error (deadline, shutdown) to the worker's timeout
// handling.
func exprErr(field string, err error) error {
	if isCELError(err) {
		return plugins.Permanent(fmt.Errorf("%s: %w", field, err))
	}
	return err
}

func (rt *runtime) actionLogger(action string, pc plugins.PluginContext) *slog.Logger {
	return rt.logger().With("action", action, "org_slug", pc.OrgSlug, "project_id", pc.ProjectID)
}

// updateProject patches the matched project with values read from the
// event: one JSON Patch "add" per rule, in order. An empty rule list
// still sends an empty patch, as the Python action does.
func (rt *runtime) updateProject(ctx context.Context, in plugins.ActionInput[UpdateProjectConfig]) error {
	doc := in.Event.Document()
	ops := make([]patchOp, 0, len(in.Config))
	for i, rule := range in.Config {
		v, err := rule.From.Resolve(doc)
		if err != nil {
			return selectorErr(fmt.Sprintf("rule %d from", i), err)
		}
		ops = append(ops, patchOp{Op: "add", Path: string(rule.Path), Value: v})
	}
	ep, err := rt.endpoint(in.Credentials)
	if err != nil {
		return err
	}
	rt.actionLogger(ActionUpdateProject, in.Context).DebugContext(ctx, "patching project", "operations", len(ops))
	return rt.api.PatchProject(ctx, ep, in.Context.OrgSlug, in.Context.ProjectID, ops)
}

// createRelease creates the project's release from a deployment event:
// committish from CEL (null skips), title from the title selector, tag
// from the optional version CEL (null leaves it off), created_by from the
// resolved actor. A 409 (already exists) is success.
func (rt *runtime) createRelease(ctx context.Context, in plugins.ActionInput[CreateReleaseConfig]) error {
	log := rt.actionLogger(ActionCreateRelease, in.Context)
	doc := in.Event.Document()
	vars := celVars(doc)
	committish, ok, err := rt.cel.Eval(ctx, in.Config.CommittishExpression, vars)
	if err != nil {
		return exprErr("committish_expression", err)
	}
	if !ok {
		log.WarnContext(ctx, fmt.Sprintf("Skipping release for project %s: committish expression evaluated to null", in.Context.ProjectID))
		return nil
	}
	title, err := in.Config.TitleSelector.Resolve(doc)
	if err != nil {
		return selectorErr("title_selector", err)
	}
	body := releaseCreate{Committish: committish, Title: pyStr(title), CreatedBy: in.Context.ActorUserID}
	if in.Config.VersionExpression != nil {
		tag, ok, err := rt.cel.Eval(ctx, *in.Config.VersionExpression, vars)
		if err != nil {
			return exprErr("version_expression", err)
		}
		if ok {
			body.Tag = &tag
		}
	}
	ep, err := rt.endpoint(in.Credentials)
	if err != nil {
		return err
	}
	_, created, err := rt.api.CreateRelease(ctx, ep, in.Context.OrgSlug, in.Context.ProjectID, body)
	if err != nil {
		return err
	}
	if !created {
		name := committish
		if body.Tag != nil && *body.Tag != "" {
			name = *body.Tag
		}
		log.DebugContext(ctx, fmt.Sprintf("Release %q already exists for project %s", name, in.Context.ProjectID))
	}
	return nil
}

// addDeploymentEvent records a deployment status on a release: map the
// state (unknown states skip), evaluate the committish (null skips) and
// the optional tag, find the release by them (05-21 fix: the API wants
// the release id), then POST the event to that id.
func (rt *runtime) addDeploymentEvent(ctx context.Context, in plugins.ActionInput[AddDeploymentEventConfig]) error {
	log := rt.actionLogger(ActionAddDeploymentEvent, in.Context)
	cfg := in.Config
	doc := in.Event.Document()
	rawState, err := cfg.StatusSelector.Resolve(doc)
	if err != nil {
		return selectorErr("status_selector", err)
	}
	state := pyStr(rawState)
	status, known := statusMap[state]
	if !known {
		log.WarnContext(ctx, fmt.Sprintf("Unmapped deployment status %q — skipping", state))
		return nil
	}
	vars := celVars(doc)
	committish, ok, err := rt.cel.Eval(ctx, cfg.CommittishExpression, vars)
	if err != nil {
		return exprErr("committish_expression", err)
	}
	if !ok {
		log.WarnContext(ctx, fmt.Sprintf("Skipping deployment event for project %s: committish expression evaluated to null", in.Context.ProjectID))
		return nil
	}
	var tag *string
	if cfg.VersionExpression != nil {
		v, ok, err := rt.cel.Eval(ctx, *cfg.VersionExpression, vars)
		if err != nil {
			return exprErr("version_expression", err)
		}
		if ok {
			tag = &v
		}
	}
	envValue, err := cfg.EnvironmentSelector.Resolve(doc)
	if err != nil {
		return selectorErr("environment_selector", err)
	}
	env := pyStr(envValue)
	if env == "" || env == "." || env == ".." {
		// A path segment the API could never route; the value comes from
		// the sender, so refuse it rather than let it climb the URL.
		return plugins.Permanent(fmt.Errorf("environment_selector: %q is not an environment slug", env))
	}
	body := deploymentEvent{Status: status}
	if cfg.NoteSelector != nil {
		v, err := cfg.NoteSelector.Resolve(doc)
		if err != nil {
			return selectorErr("note_selector", err)
		}
		note := pyStr(v)
		body.Note = &note
	}
	if cfg.ExternalRunIDSelector != nil {
		v, err := cfg.ExternalRunIDSelector.Resolve(doc)
		if err != nil {
			return selectorErr("external_run_id_selector", err)
		}
		runID := pyStr(v)
		body.ExternalRunID = &runID
	}
	ep, err := rt.endpoint(in.Credentials)
	if err != nil {
		return err
	}
	ids, err := rt.api.ListReleases(ctx, ep, in.Context.OrgSlug, in.Context.ProjectID, &committish, tag)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		msg := fmt.Sprintf("No release matches committish=%q tag=%s for project %s; status %q not recorded yet",
			committish, quoteOrNone(tag), in.Context.ProjectID, status)
		log.WarnContext(ctx, msg)
		return fmt.Errorf("%w: %s", ErrNoMatchingRelease, msg)
	}
	return rt.api.RecordDeployment(ctx, ep, in.Context.OrgSlug, in.Context.ProjectID, ids[0], env, body)
}

// ingestSbom forwards a CycloneDX document from the event to the release
// named by version_expression, creating the release first when
// committish_expression is configured. Its input-shape problems drop the
// SBoM with a warning, as the Python action deliberately does.
func (rt *runtime) ingestSbom(ctx context.Context, in plugins.ActionInput[IngestSbomConfig]) error {
	log := rt.actionLogger(ActionIngestSbom, in.Context)
	cfg := in.Config
	doc := in.Event.Document()
	vars := celVars(doc)
	tag, ok, err := rt.cel.Eval(ctx, cfg.VersionExpression, vars)
	if err != nil {
		var ce *CELError
		if errors.As(err, &ce) && ce.Phase == "evaluate" {
			log.WarnContext(ctx, fmt.Sprintf("version_expression %q raised %v for project %s; SBoM dropped",
				cfg.VersionExpression, ce.Err, in.Context.ProjectID))
			return nil
		}
		return exprErr("version_expression", err)
	}
	if !ok {
		log.WarnContext(ctx, fmt.Sprintf("version_expression %q evaluated to null for project %s; SBoM dropped",
			cfg.VersionExpression, in.Context.ProjectID))
		return nil
	}
	found, err := cfg.SbomSelector.Resolve(doc)
	if err != nil {
		log.WarnContext(ctx, fmt.Sprintf("SBoM selector %q did not resolve for project %s; SBoM dropped",
			string(cfg.SbomSelector), in.Context.ProjectID))
		return nil
	}
	sbom, isObject := found.(map[string]any)
	if !isObject {
		log.WarnContext(ctx, fmt.Sprintf("SBoM at %q is not a JSON object — skipping ingest for project %s",
			string(cfg.SbomSelector), in.Context.ProjectID))
		return nil
	}
	ep, err := rt.endpoint(in.Credentials)
	if err != nil {
		return err
	}
	releaseID, err := rt.releaseForSbom(ctx, log, ep, in, doc, vars, tag)
	if err != nil || releaseID == "" {
		return err
	}
	return rt.api.PutSBOM(ctx, ep, in.Context.OrgSlug, in.Context.ProjectID, releaseID, sbom)
}

// releaseForSbom finds the release by tag or creates it. An empty id with
// a nil error means "dropped, already logged".
func (rt *runtime) releaseForSbom(ctx context.Context, log *slog.Logger, ep endpoint,
	in plugins.ActionInput[IngestSbomConfig], doc, vars map[string]any, tag string) (string, error) {
	org, project := in.Context.OrgSlug, in.Context.ProjectID
	ids, err := rt.api.ListReleases(ctx, ep, org, project, nil, &tag)
	if err != nil {
		return "", err
	}
	if len(ids) > 0 {
		return ids[0], nil
	}
	cfg := in.Config
	if cfg.CommittishExpression == nil {
		msg := fmt.Sprintf("No release matches tag=%q for project %s and no committish_expression configured; SBoM not ingested yet",
			tag, project)
		log.WarnContext(ctx, msg)
		return "", fmt.Errorf("%w: %s", ErrNoMatchingRelease, msg)
	}
	committish, err := rt.sbomCommittish(ctx, *cfg.CommittishExpression, vars)
	if err != nil {
		return "", err
	}
	if committish == "" {
		log.WarnContext(ctx, fmt.Sprintf("committish_expression %q did not resolve for project %s; SBoM dropped",
			*cfg.CommittishExpression, project))
		return "", nil
	}
	body := releaseCreate{Committish: committish, Title: sbomTitle(cfg.TitleSelector, doc, tag), Tag: &tag,
		CreatedBy: in.Context.ActorUserID}
	id, created, err := rt.api.CreateRelease(ctx, ep, org, project, body)
	if err != nil {
		return "", err
	}
	if created && id != "" {
		return id, nil
	}
	// 409: another delivery created it first (or the create answered
	// without an id); list again and use the winner.
	ids, err = rt.api.ListReleases(ctx, ep, org, project, nil, &tag)
	if err != nil {
		return "", err
	}
	if len(ids) == 0 {
		msg := fmt.Sprintf("create_release returned 409 for project %s tag=%q but the subsequent list returned empty", project, tag)
		log.WarnContext(ctx, msg)
		return "", fmt.Errorf("%w: %s", ErrNoMatchingRelease, msg)
	}
	return ids[0], nil
}

// sbomCommittish evaluates committish_expression for an auto-created
// release: trimmed, lowercased, cut to 7 characters, and it must then be 7
// hex digits. "" means it did not resolve (null, evaluation error, not
// hex); a compile error is permanent.
func (rt *runtime) sbomCommittish(ctx context.Context, expr string, vars map[string]any) (string, error) {
	v, ok, err := rt.cel.Eval(ctx, expr, vars)
	if err != nil {
		var ce *CELError
		if errors.As(err, &ce) && ce.Phase == "evaluate" {
			return "", nil
		}
		return "", exprErr("committish_expression", err)
	}
	if !ok {
		return "", nil
	}
	r := []rune(strings.ToLower(strings.TrimSpace(v)))
	if len(r) > 7 {
		r = r[:7]
	}
	c := string(r)
	if !committishPattern.MatchString(c) {
		return "", nil
	}
	return c, nil
}

// sbomTitle is the title selector's value, or "Release <tag>" when it is
// unset, misses or selects null.
func sbomTitle(sel *Pointer, doc map[string]any, tag string) string {
	if sel != nil {
		if v, err := sel.Resolve(doc); err == nil && v != nil {
			return pyStr(v)
		}
	}
	return "Release " + tag
}

func quoteOrNone(s *string) string {
	if s == nil {
		return "None"
	}
	return fmt.Sprintf("%q", *s)
}
