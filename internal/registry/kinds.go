package registry

import (
	"errors"
	"fmt"

	"github.com/aweber-imbi/imbi-worker/plugins"
)

// supportedAPIVersions are the manifest api_version values the registry
// loads (plugins-spec §3).
var supportedAPIVersions = []int{1}

// kindOrder is plugins-spec §3's order of plugin_type values.
var kindOrder = []plugins.PluginType{
	plugins.TypeConfiguration, plugins.TypeLogs, plugins.TypeIdentity,
	plugins.TypeDeployment, plugins.TypeLifecycle, plugins.TypeWebhook,
}

// kindNames maps plugin_type to the interface name Python's base class had.
var kindNames = map[plugins.PluginType]string{
	plugins.TypeConfiguration: "ConfigurationPlugin",
	plugins.TypeLogs:          "LogsPlugin",
	plugins.TypeIdentity:      "IdentityPlugin",
	plugins.TypeDeployment:    "DeploymentPlugin",
	plugins.TypeLifecycle:     "LifecyclePlugin",
	plugins.TypeWebhook:       "WebhookActionPlugin",
}

// implements reports whether p implements the interface of kind t.
func implements(p any, t plugins.PluginType) bool {
	var ok bool
	switch t {
	case plugins.TypeConfiguration:
		_, ok = p.(plugins.ConfigurationPlugin)
	case plugins.TypeLogs:
		_, ok = p.(plugins.LogsPlugin)
	case plugins.TypeIdentity:
		_, ok = p.(plugins.IdentityPlugin)
	case plugins.TypeDeployment:
		_, ok = p.(plugins.DeploymentPlugin)
	case plugins.TypeLifecycle:
		_, ok = p.(plugins.LifecyclePlugin)
	case plugins.TypeWebhook:
		_, ok = p.(plugins.WebhookActionPlugin)
	}
	return ok
}

// kinds lists the kinds p implements, in §3's order.
func kinds(p any) []plugins.PluginType {
	var out []plugins.PluginType
	for _, t := range kindOrder {
		if implements(p, t) {
			out = append(out, t)
		}
	}
	return out
}

// checkKind is plugins-spec §7.3 steps 3–4: p must implement at least one
// kind, and the one its manifest names.
func checkKind(p plugins.Plugin, m plugins.PluginManifest) error {
	if len(kinds(p)) == 0 {
		return errors.New("Plugin must implement ConfigurationPlugin, LogsPlugin, IdentityPlugin, DeploymentPlugin, LifecyclePlugin, or WebhookActionPlugin")
	}
	if !implements(p, m.PluginType) {
		return fmt.Errorf("Class does not implement %s for plugin_type='%s'", kindNames[m.PluginType], m.PluginType)
	}
	return nil
}
