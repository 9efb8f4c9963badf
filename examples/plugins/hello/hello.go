// Package hello is an example Imbi webhook plugin in its own Go module.
// Importing it registers the plugin (slug "hello") with one action,
// "greet", whose typed config the worker validates against the JSON
// Schema generated from GreetConfig before the action runs.
//
// Rules use it with handler "hello#greet" and a handler_config such as
// {"name": "Imbi"}.
package hello

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/aweber-imbi/imbi-worker/plugins"
)

func init() { plugins.Register("hello", Plugin{}) }

// Plugin is the webhook plugin. It keeps no state: the worker may call
// it from many goroutines at once.
type Plugin struct{}

// Manifest describes the plugin; NewManifest supplies Python's defaults.
func (Plugin) Manifest() plugins.PluginManifest {
	m := plugins.NewManifest("hello", "Hello", plugins.TypeWebhook)
	desc := "Example plugin: greets whoever the rule names."
	m.Description = &desc
	return m
}

// Actions is the static catalogue, built once when the registry loads.
func (Plugin) Actions() ([]plugins.ActionDescriptor, error) {
	greet, err := plugins.NewAction("greet", "Say hello", Greet,
		plugins.WithDescription("Logs a greeting for the configured name."))
	if err != nil {
		return nil, err
	}
	return []plugins.ActionDescriptor{greet}, nil
}

// GreetConfig is the rule's handler_config for hello#greet. Fields
// without omitempty are required by the generated schema.
type GreetConfig struct {
	Name     string `json:"name" jsonschema:"minLength=1,description=Who to greet"`
	Greeting string `json:"greeting,omitempty" jsonschema:"description=Defaults to Hello"`
}

// Greet is the action. It gets the validated, typed config; returning a
// plain error asks for a retry, plugins.Permanent(err) does not.
func Greet(ctx context.Context, in plugins.ActionInput[GreetConfig]) error {
	if in.Config.Name == "nobody" {
		return plugins.Permanent(fmt.Errorf("refusing to greet %q", in.Config.Name))
	}
	greeting := in.Config.Greeting
	if greeting == "" {
		greeting = "Hello"
	}
	slog.InfoContext(ctx, fmt.Sprintf("%s, %s!", greeting, in.Config.Name),
		"project", in.Context.ProjectSlug, "event_type", in.Event.Type)
	return nil
}
