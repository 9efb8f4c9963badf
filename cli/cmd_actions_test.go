package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/cli"
	"github.com/aweber-imbi/imbi-worker/plugins"
)

type greetConfig struct {
	Greeting string `json:"greeting" jsonschema:"minLength=1"`
}

type cliTestPlugin struct{}

func (cliTestPlugin) Manifest() plugins.PluginManifest {
	m := plugins.NewManifest("cli-test", "CLI test", plugins.TypeWebhook)
	m.Credentials = []plugins.CredentialField{plugins.NewCredentialField("token", "Token")}
	return m
}

func (cliTestPlugin) Actions() ([]plugins.ActionDescriptor, error) {
	d, err := plugins.NewAction("greet", "Greet", func(context.Context, plugins.ActionInput[greetConfig]) error { return nil },
		plugins.WithTimeout(3*time.Second), plugins.WithDescription("Say hello"))
	return []plugins.ActionDescriptor{d}, err
}

// Registered before the default registry loads (on its first use).
func init() {
	plugins.Register("cli-test-registration", cliTestPlugin{})
	plugins.Register("cli-test-broken", (*cliTestPlugin)(nil)) // a nil plugin: a load error, not a crash
}

func runCLI(t *testing.T, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	cmd := cli.NewRootCmd()
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	require.NoError(t, cmd.ExecuteContext(t.Context()))
	return out.String()
}

func TestActionsJSON(t *testing.T) {
	var rep struct {
		Plugins []struct {
			Slug, Kind, Registration, Package, Version string
			Credentials                                []string
			Actions                                    []struct {
				Name, Handler, Label string
				Description          *string
				TimeoutSeconds       *float64       `json:"timeout_seconds"`
				ConfigSchema         map[string]any `json:"config_schema"`
			}
		}
		Errors    map[string]string
		Skipped   []string
		LoadError *string `json:"load_error"`
	}
	require.NoError(t, json.Unmarshal([]byte(runCLI(t, "actions", "--json")), &rep))
	require.Nil(t, rep.LoadError)
	require.Equal(t, "Missing or invalid manifest attribute", rep.Errors["cli-test-broken"])
	var found bool
	for _, p := range rep.Plugins {
		if p.Slug != "cli-test" {
			continue
		}
		found = true
		require.Equal(t, "webhook", p.Kind)
		require.Equal(t, "cli-test-registration", p.Registration)
		require.Equal(t, "github.com/aweber-imbi/imbi-worker", p.Package)
		require.Equal(t, []string{"token"}, p.Credentials)
		require.Len(t, p.Actions, 1)
		a := p.Actions[0]
		require.Equal(t, "cli-test#greet", a.Handler)
		require.Equal(t, "Say hello", *a.Description)
		require.Equal(t, 3.0, *a.TimeoutSeconds)
		props := a.ConfigSchema["properties"].(map[string]any)
		require.Equal(t, map[string]any{"type": "string", "minLength": float64(1)}, props["greeting"])
	}
	require.True(t, found, "cli-test plugin listed")
}

func TestActionsTable(t *testing.T) {
	out := runCLI(t, "actions")
	require.Regexp(t, `(?m)^PLUGIN\s+KIND\s+PACKAGE\s+VERSION\s+HANDLER\s+LABEL$`, out)
	require.Regexp(t, `(?m)^cli-test\s+webhook\s+github.com/aweber-imbi/imbi-worker\s+\S+\s+cli-test#greet\s+Greet$`, out)
	require.Contains(t, out, "load error: cli-test-broken: Missing or invalid manifest attribute")
}
