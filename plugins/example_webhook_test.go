package plugins_test

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aweber-imbi/imbi-worker/plugins"
)

// NotifyConfig is the rule's handler_config of the notify action; its JSON
// Schema is generated from the struct.
type NotifyConfig struct {
	Channel string `json:"channel" jsonschema:"minLength=1"`
}

// Notifier is a webhook plugin (plugin_type "webhook"): a manifest and a
// static catalogue of typed actions.
type Notifier struct{}

func (Notifier) Manifest() plugins.PluginManifest {
	m := plugins.NewManifest("notifier", "Notifier", plugins.TypeWebhook)
	m.Credentials = []plugins.CredentialField{plugins.NewCredentialField("token", "API token")}
	return m
}

func (Notifier) Actions() ([]plugins.ActionDescriptor, error) {
	notify, err := plugins.NewAction("notify", "Post a message", Notify, plugins.WithTimeout(5*time.Second))
	return []plugins.ActionDescriptor{notify}, err
}

// Notify is the action: it gets the decoded config, the credentials and the
// webhook event. A plain error is retried; plugins.Permanent is not.
func Notify(_ context.Context, in plugins.ActionInput[NotifyConfig]) error {
	if in.Credentials["token"] == "" {
		return plugins.Permanent(fmt.Errorf("no token"))
	}
	fmt.Printf("%s: %s event for %s\n", in.Config.Channel, in.Event.Type, in.Context.ProjectSlug)
	return nil
}

// A webhook action plugin. In a real plugin package Register runs from
// init: func init() { plugins.Register("notifier", Notifier{}) }. The host
// runs an action as below: it decodes the rule's handler_config, then runs.
func ExampleWebhookActionPlugin() {
	plugins.Register("example-notifier", Notifier{})

	acts, err := Notifier{}.Actions()
	if err != nil {
		panic(err)
	}
	notify := acts[0]
	cfg, err := notify.DecodeConfig(json.RawMessage(`{"channel":"#deploys"}`))
	if err != nil {
		panic(err)
	}
	err = notify.Run(context.Background(), plugins.Invocation{
		Context:     plugins.PluginContext{ProjectID: "p1", ProjectSlug: "api", OrgSlug: "acme"},
		Credentials: plugins.Credentials{"token": "secret"},
		Config:      cfg,
		Event:       plugins.Event{Type: "push"},
	})
	fmt.Println(err)
	_, err = notify.DecodeConfig(json.RawMessage(`{"channel":""}`))
	fmt.Println(err != nil)
	// Output:
	// #deploys: push event for api
	// <nil>
	// true
}
