package gatewayactions

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/pluginreg"
	"github.com/aweber-imbi/imbi-worker/internal/registry"
	"github.com/aweber-imbi/imbi-worker/plugins"
)

// The package registers itself from init, and the registry loads it as a
// webhook plugin with the four actions in Python's order.
func TestRegisteredAndLoadable(t *testing.T) {
	t.Parallel()
	var found bool
	for _, r := range pluginreg.All() {
		if r.Name == Slug {
			found = true
		}
	}
	require.True(t, found, "init registers %q", Slug)

	reg := registry.New(func() []pluginreg.Registration {
		return []pluginreg.Registration{{Name: Slug, Load: func() (any, error) { return Plugin{}, nil }}}
	})
	res, err := reg.Load()
	require.NoError(t, err)
	require.Empty(t, res.Errors)
	entry, err := reg.Get(Slug)
	require.NoError(t, err)
	require.True(t, entry.IsWebhook())
	m := entry.Manifest
	require.Equal(t, "Gateway Actions", m.Name)
	require.Equal(t, plugins.TypeWebhook, m.PluginType)
	require.Equal(t, 1, m.APIVersion)
	require.Empty(t, m.Credentials)

	var names, labels []string
	for _, a := range entry.Actions() {
		names = append(names, a.Name)
		labels = append(labels, a.Label)
	}
	require.Equal(t, []string{ActionUpdateProject, ActionCreateRelease, ActionAddDeploymentEvent, ActionIngestSbom}, names)
	require.Equal(t, []string{"Update Project from Webhook", "Create Release from Deployment Webhook",
		"Add Deployment Event from Webhook", "Ingest CycloneDX SBoM for Release"}, labels)

	// The descriptor renders with the config schema for the rule editor.
	a, ok := entry.Action(ActionCreateRelease)
	require.True(t, ok)
	out, err := json.Marshal(a)
	require.NoError(t, err)
	var rendered map[string]any
	require.NoError(t, json.Unmarshal(out, &rendered))
	require.Equal(t, "github.com/aweber-imbi/imbi-worker/internal/actions/gatewayactions.CreateReleaseConfig", rendered["config_model"])
	require.NotNil(t, rendered["config_schema"])
}
