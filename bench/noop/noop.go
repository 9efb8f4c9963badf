// Package noop is the benchmark's webhook plugin, registered through the
// public SDK like any third-party plugin: slug "bench", one action "noop"
// whose handler_config ({"label": "bench"}) is validated against its
// schema, and which does nothing. internal/benchdata's events name it.
package noop

import (
	"context"

	"github.com/aweber-imbi/imbi-worker/plugins"
)

func init() { plugins.Register("bench", Plugin{}) }

// Plugin is the no-op webhook plugin.
type Plugin struct{}

// Manifest describes the plugin.
func (Plugin) Manifest() plugins.PluginManifest {
	return plugins.NewManifest("bench", "bench", plugins.TypeWebhook)
}

// Config is bench#noop's handler_config.
type Config struct {
	Label string `json:"label" jsonschema:"minLength=1"`
}

// Actions is the one no-op action.
func (Plugin) Actions() ([]plugins.ActionDescriptor, error) {
	a, err := plugins.NewAction("noop", "No-op", func(context.Context, plugins.ActionInput[Config]) error { return nil })
	if err != nil {
		return nil, err
	}
	return []plugins.ActionDescriptor{a}, nil
}
