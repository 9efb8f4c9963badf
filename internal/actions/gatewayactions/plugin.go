// Package gatewayactions is the built-in "gateway-actions" webhook plugin,
// the Go port of imbi-gateway's GatewayActionsPlugin: four actions that
// turn third-party webhooks (GitHub deployments, deployment statuses,
// SBoMs) into Imbi project updates, releases, deployment events and SBoMs
// by calling imbi-api over HTTP.
//
// Actions see the 06-05 event shape: JSON Pointer selectors resolve
// against the event document (the webhook body under /payload) and CEL
// expressions see {type, third_party_service, attributed_to, metadata,
// payload}. docs/gateway-actions.md is the operator and rule-author guide.
package gatewayactions

import (
	"log/slog"
	"net/http"
	"os"

	"github.com/aweber-imbi/imbi-worker/plugins"
)

// Slug is the plugin's manifest slug (the part of a rule handler before
// '#').
const Slug = "gateway-actions"

// Action names (the part of a rule handler after '#').
const (
	ActionUpdateProject      = "update_project"
	ActionCreateRelease      = "create_release"
	ActionAddDeploymentEvent = "add_deployment_event"
	ActionIngestSbom         = "ingest_sbom"
)

func init() {
	plugins.Register(Slug, Plugin{})
}

// Plugin is the gateway-actions webhook plugin. The zero value is what
// the worker binary registers: no credentials, imbi-api's address and
// token from ACTIONS_IMBI_URL / ACTIONS_IMBI_TOKEN, slog.Default, a
// shared http.Client. A custom binary can register a configured value
// under another entry name instead (the slug stays "gateway-actions").
type Plugin struct {
	// CredentialsFromPlugin makes the manifest declare credentials
	// "token" (required) and "url" (optional, default ACTIONS_IMBI_URL or
	// http://imbi-api:8000); the worker then loads them from the Plugin
	// node, Fernet-decrypted, and the environment token is not used.
	CredentialsFromPlugin bool
	// HTTPClient is shared by every action of this plugin (connection
	// reuse). Nil: a client with its own transport.
	HTTPClient *http.Client
	// Logger receives the actions' warnings (skipped events, dropped
	// SBoMs). Nil: slog.Default().
	Logger *slog.Logger
	// Getenv reads ACTIONS_IMBI_URL / ACTIONS_IMBI_TOKEN at call time.
	// Nil: os.Getenv.
	Getenv func(string) string
	// CELCostLimit bounds one CEL evaluation (cel-go cost units). 0:
	// 1,000,000.
	CELCostLimit uint64
}

// Manifest describes the plugin: a webhook plugin with no credentials,
// or url/token credentials when CredentialsFromPlugin is set.
func (p Plugin) Manifest() plugins.PluginManifest {
	desc := "Turn third-party webhooks into Imbi project updates, releases, deployment events and SBoMs through imbi-api."
	m := plugins.NewManifest(Slug, "Gateway Actions", plugins.TypeWebhook)
	m.Description = &desc
	m.Cacheable = false // as this manifest has always said
	if p.CredentialsFromPlugin {
		urlDesc := "imbi-api base URL; default ACTIONS_IMBI_URL or " + DefaultImbiURL
		tokenDesc := "imbi-api service token (sent as a Bearer token)"
		m.Credentials = []plugins.CredentialField{
			{Name: CredentialURL, Label: "Imbi API URL", Description: &urlDesc, Required: false},
			{Name: CredentialToken, Label: "Imbi API token", Description: &tokenDesc, Required: true},
		}
	}
	return m
}

// Actions returns the four actions. The registry calls it once per load;
// the CEL program cache and the HTTP client built here are shared by
// the four actions for the life of that registry snapshot.
func (p Plugin) Actions() ([]plugins.ActionDescriptor, error) {
	rt, err := newRuntime(p)
	if err != nil {
		return nil, err
	}
	update, err := plugins.NewAction(ActionUpdateProject, "Update Project from Webhook", rt.updateProject,
		plugins.WithDescription("Patch the matched Imbi project with values selected from the event (JSON Patch \"add\" per {path, from} rule)."))
	if err != nil {
		return nil, err
	}
	create, err := plugins.NewAction(ActionCreateRelease, "Create Release from Deployment Webhook", rt.createRelease,
		plugins.WithDescription("Create the project's release (committish, optional tag, title) from a deployment event; an existing release is success."))
	if err != nil {
		return nil, err
	}
	deploy, err := plugins.NewAction(ActionAddDeploymentEvent, "Add Deployment Event from Webhook", rt.addDeploymentEvent,
		plugins.WithDescription("Record a deployment status on the release found by committish (and tag) for the selected environment."))
	if err != nil {
		return nil, err
	}
	sbom, err := plugins.NewAction(ActionIngestSbom, "Ingest CycloneDX SBoM for Release", rt.ingestSbom,
		plugins.WithDescription("Attach a CycloneDX SBoM from the event to the release found by tag, creating the release when configured."))
	if err != nil {
		return nil, err
	}
	return []plugins.ActionDescriptor{update, create, deploy, sbom}, nil
}

// runtime is what the actions share: configuration, the CEL engine and
// the imbi-api client.
type runtime struct {
	fromCreds bool
	getenv    func(string) string
	log       *slog.Logger // nil: slog.Default() at log time
	cel       *celEngine
	api       *imbiClient
}

func newRuntime(p Plugin) (*runtime, error) {
	engine, err := newCELEngine(p.CELCostLimit, defaultCELCacheSize)
	if err != nil {
		return nil, err
	}
	hc := p.HTTPClient
	if hc == nil {
		// Our own transport (a clone of the default) so the pool's size
		// suits one API host hit by many concurrent actions.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 32
		hc = &http.Client{Transport: tr}
	}
	getenv := p.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	return &runtime{
		fromCreds: p.CredentialsFromPlugin,
		getenv:    getenv,
		log:       p.Logger,
		cel:       engine,
		api:       &imbiClient{http: hc, userAgent: userAgent()},
	}, nil
}

// logger is the configured logger or the process default as it is now
// (the worker may install its handler after the registry loads).
func (rt *runtime) logger() *slog.Logger {
	l := rt.log
	if l == nil {
		l = slog.Default()
	}
	return l.With("plugin", Slug)
}
