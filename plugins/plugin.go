package plugins

// Plugin is what every plugin is: something with a manifest. The six kinds
// below embed it. The registry checks a registered value implements the
// kind its manifest's plugin_type names.
type Plugin interface {
	Manifest() PluginManifest
}

// WebhookActionPlugin reacts to inbound webhooks routed by imbi-gateway
// through the worker (plugin_type "webhook"). Actions returns the static
// catalogue; the registry calls it once at load and keeps the result.
type WebhookActionPlugin interface {
	Plugin
	Actions() ([]ActionDescriptor, error)
}
