package plugins

import (
	"context"
)

// The six plugin kinds (plugins-spec §5). Python's abstract methods are
// interface methods, so a missing one is a compile error instead of a
// TypeError at instantiation. Python's concrete defaults are optional
// capabilities: small interfaces a plugin implements only when it has
// the feature, found by type assertion; the package functions below
// (Histogram, Revoke, CreateTag, …) call the capability when present and
// otherwise behave as Python's default does. Every method gets the
// per-call PluginContext and the decrypted credentials; a plugin keeps no
// state across calls (Python creates a new instance per request).

// ConfigurationPlugin is a typed key/value store scoped to a project
// (plugin_type "configuration").
type ConfigurationPlugin interface {
	Plugin
	// ListKeys returns every visible key, without values.
	ListKeys(ctx context.Context, pctx PluginContext, creds Credentials) ([]ConfigKey, error)
	// GetValues returns the named keys (nil: all); missing keys are
	// omitted, not errors.
	GetValues(ctx context.Context, pctx PluginContext, creds Credentials, keys []string) ([]ConfigKeyWithValue, error)
	// SetValue creates or updates key and returns its persisted state.
	SetValue(ctx context.Context, pctx PluginContext, creds Credentials, key string, value ConfigValue) (ConfigKey, error)
	// DeleteKey removes key; deleting an absent key is not an error.
	DeleteKey(ctx context.Context, pctx PluginContext, creds Credentials, key string) error
}

// LogsPlugin searches an external log store (plugin_type "logs").
type LogsPlugin interface {
	Plugin
	// Search returns entries newest first, honouring Limit and Cursor; a
	// stale cursor is a *CursorExpiredError.
	Search(ctx context.Context, pctx PluginContext, creds Credentials, q LogQuery) (LogResult, error)
	// Schema describes the searchable fields (at least "name", "label").
	Schema(ctx context.Context, pctx PluginContext, creds Credentials) ([]map[string]any, error)
}

// LogsHistogrammer is the optional histogram of a LogsPlugin. A plugin
// that implements it sets manifest.supports_histogram.
type LogsHistogrammer interface {
	Histogram(ctx context.Context, pctx PluginContext, creds Credentials, q LogQuery, bucketCount int) ([]LogHistogramBucket, error)
}

// DefaultBucketCount is histogram's default bucket_count.
const DefaultBucketCount = 60

// Histogram calls p's histogram with bucketCount (0 → 60). A plugin
// without LogsHistogrammer yields an empty list, Python's default.
func Histogram(ctx context.Context, p LogsPlugin, pctx PluginContext, creds Credentials, q LogQuery, bucketCount int) ([]LogHistogramBucket, error) {
	if bucketCount == 0 {
		bucketCount = DefaultBucketCount
	}
	h, ok := p.(LogsHistogrammer)
	if !ok {
		return []LogHistogramBucket{}, nil
	}
	return h.Histogram(ctx, pctx, creds, q, bucketCount)
}

// IdentityPlugin connects users to an upstream identity (plugin_type
// "identity").
type IdentityPlugin interface {
	Plugin
	// AuthorizationRequest starts a flow; scopes nil = the plugin's default.
	AuthorizationRequest(ctx context.Context, pctx PluginContext, creds Credentials, redirectURI string, scopes []string) (AuthorizationRequest, error)
	// ExchangeCode completes a flow; codeVerifier is the PKCE verifier or nil.
	ExchangeCode(ctx context.Context, pctx PluginContext, creds Credentials, code, redirectURI string, codeVerifier *string) (IdentityProfile, IdentityCredentials, error)
	// Refresh mints new credentials from a refresh token.
	Refresh(ctx context.Context, pctx PluginContext, creds Credentials, refreshToken string) (IdentityCredentials, error)
}

// IdentityRevoker is the optional token revocation of an IdentityPlugin.
type IdentityRevoker interface {
	Revoke(ctx context.Context, pctx PluginContext, creds Credentials, token string) error
}

// MaterializeOptions are materialize's keyword-only arguments.
type MaterializeOptions struct {
	// DB is the host's graph handle (nil when the host has none).
	DB any
	// IdentityOptions are the identity plugin instance's own options.
	IdentityOptions map[string]any
}

// IdentityMaterializer turns a stored connection into usable credentials
// (e.g. exchanges an OIDC token for cloud keys).
type IdentityMaterializer interface {
	Materialize(ctx context.Context, pctx PluginContext, creds Credentials, conn IdentityCredentials, opts MaterializeOptions) (IdentityCredentials, error)
}

// Revoke calls p's revocation; without IdentityRevoker it is a no-op.
func Revoke(ctx context.Context, p IdentityPlugin, pctx PluginContext, creds Credentials, token string) error {
	if r, ok := p.(IdentityRevoker); ok {
		return r.Revoke(ctx, pctx, creds, token)
	}
	return nil
}

// Materialize calls p's materialize; without IdentityMaterializer the
// connection is returned unchanged.
func Materialize(ctx context.Context, p IdentityPlugin, pctx PluginContext, creds Credentials, conn IdentityCredentials, opts MaterializeOptions) (IdentityCredentials, error) {
	if m, ok := p.(IdentityMaterializer); ok {
		return m.Materialize(ctx, pctx, creds, conn, opts)
	}
	return conn, nil
}

// DeploymentPlugin reads refs and commits and triggers deployments
// (plugin_type "deployment").
type DeploymentPlugin interface {
	Plugin
	// ListRefs lists refs of kind ("" = all) matching query (nil = any).
	ListRefs(ctx context.Context, pctx PluginContext, creds Credentials, kind RefListKind, query *string) ([]Ref, error)
	// ListCommits lists up to limit commits of ref (DefaultCommitLimit).
	ListCommits(ctx context.Context, pctx PluginContext, creds Credentials, ref string, limit int) ([]Commit, error)
	ResolveCommittish(ctx context.Context, pctx PluginContext, creds Credentials, committish string) (Commit, error)
	Compare(ctx context.Context, pctx PluginContext, creds Credentials, base, head string) (CompareResult, error)
	// TriggerDeployment starts a run; inputs nil = none.
	TriggerDeployment(ctx context.Context, pctx PluginContext, creds Credentials, refOrSHA string, inputs map[string]string) (DeploymentRun, error)
	GetDeploymentStatus(ctx context.Context, pctx PluginContext, creds Credentials, runID string) (DeploymentRun, error)
}

// DefaultCommitLimit is list_commits' default limit; DefaultRecentLimit
// is list_recent_deployments'.
const (
	DefaultCommitLimit = 25
	DefaultRecentLimit = 1
)

// Optional capabilities of a DeploymentPlugin.
type (
	DeploymentCheckStatuser interface {
		GetCheckStatus(ctx context.Context, pctx PluginContext, creds Credentials, committish string) (CheckStatus, error)
	}
	DeploymentTagCreator interface {
		CreateTag(ctx context.Context, pctx PluginContext, creds Credentials, sha, tag, message string) (RefInfo, error)
	}
	DeploymentReleaseCreator interface {
		CreateRelease(ctx context.Context, pctx PluginContext, creds Credentials, tag, name, bodyMarkdown string, prerelease bool) (ReleaseInfo, error)
	}
	DeploymentWorkflowLister interface {
		ListWorkflows(ctx context.Context, pctx PluginContext, creds Credentials) ([]WorkflowFile, error)
	}
	// DeploymentSyncer must be implemented when supports_deployment_sync.
	DeploymentSyncer interface {
		ListRecentDeployments(ctx context.Context, pctx PluginContext, creds Credentials, environments []string, limit int) ([]RemoteDeployment, error)
	}
)

// NotImplementedError is Python's NotImplementedError from a default
// method; errors.Is(err, ErrNotImplemented) matches it.
type NotImplementedError struct{ Method string }

func (e *NotImplementedError) Error() string   { return e.Method + " is not implemented by this plugin" }
func (e *NotImplementedError) Is(t error) bool { return t == ErrNotImplemented }

func notImplemented(method string) error { return &NotImplementedError{Method: method} }

// GetCheckStatus returns p's CI verdict; CheckUnknown when unsupported.
func GetCheckStatus(ctx context.Context, p DeploymentPlugin, pctx PluginContext, creds Credentials, committish string) (CheckStatus, error) {
	if c, ok := p.(DeploymentCheckStatuser); ok {
		return c.GetCheckStatus(ctx, pctx, creds, committish)
	}
	return CheckUnknown, nil
}

// CreateTag creates a tag, or ErrNotImplemented.
func CreateTag(ctx context.Context, p DeploymentPlugin, pctx PluginContext, creds Credentials, sha, tag, message string) (RefInfo, error) {
	if c, ok := p.(DeploymentTagCreator); ok {
		return c.CreateTag(ctx, pctx, creds, sha, tag, message)
	}
	return RefInfo{}, notImplemented("create_tag")
}

// CreateRelease creates a release, or ErrNotImplemented.
func CreateRelease(ctx context.Context, p DeploymentPlugin, pctx PluginContext, creds Credentials, tag, name, bodyMarkdown string, prerelease bool) (ReleaseInfo, error) {
	if c, ok := p.(DeploymentReleaseCreator); ok {
		return c.CreateRelease(ctx, pctx, creds, tag, name, bodyMarkdown, prerelease)
	}
	return ReleaseInfo{}, notImplemented("create_release")
}

// ListWorkflows lists deploy workflows, or ErrNotImplemented.
func ListWorkflows(ctx context.Context, p DeploymentPlugin, pctx PluginContext, creds Credentials) ([]WorkflowFile, error) {
	if c, ok := p.(DeploymentWorkflowLister); ok {
		return c.ListWorkflows(ctx, pctx, creds)
	}
	return nil, notImplemented("list_workflows")
}

// ListRecentDeployments lists the latest deployments per environment
// (limit 0 → 1), or ErrNotImplemented (the host then skips resync).
func ListRecentDeployments(ctx context.Context, p DeploymentPlugin, pctx PluginContext, creds Credentials, environments []string, limit int) ([]RemoteDeployment, error) {
	if limit == 0 {
		limit = DefaultRecentLimit
	}
	if c, ok := p.(DeploymentSyncer); ok {
		return c.ListRecentDeployments(ctx, pctx, creds, environments, limit)
	}
	return nil, notImplemented("list_recent_deployments")
}

// LifecyclePlugin reacts to project lifecycle changes (plugin_type
// "lifecycle"); the host calls it after Imbi's own state change, and a
// failure does not roll that back.
type LifecyclePlugin interface {
	Plugin
	OnProjectArchived(ctx context.Context, pctx PluginContext, creds Credentials) (LifecycleResult, error)
}

// LifecycleUnarchiver is the optional unarchive hook.
type LifecycleUnarchiver interface {
	OnProjectUnarchived(ctx context.Context, pctx PluginContext, creds Credentials) (LifecycleResult, error)
}

// OnProjectUnarchived calls the hook, or ErrNotImplemented.
func OnProjectUnarchived(ctx context.Context, p LifecyclePlugin, pctx PluginContext, creds Credentials) (LifecycleResult, error) {
	if u, ok := p.(LifecycleUnarchiver); ok {
		return u.OnProjectUnarchived(ctx, pctx, creds)
	}
	return LifecycleResult{}, notImplemented("on_project_unarchived")
}
