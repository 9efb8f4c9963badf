package registry

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/aweber-imbi/imbi-worker/plugins"
)

// coreVertexLabels are the graph's own vertex labels at the chosen commit
// (schemata.toml [vlabels]); a plugin may not declare one of them.
var coreVertexLabels = []string{
	"APIKey", "Blueprint", "ClientCredential", "Conversation", "DocumentTemplate",
	"Environment", "IdentityConnection", "LinkDefinition", "Message",
	"OAuthIdentity", "Organization", "Permission", "Plugin", "PluginRegistration",
	"Project", "ProjectType", "Release", "Role", "ScoringPolicy", "ServiceAccount",
	"ServiceApplication", "Session", "TOTPSecret", "Team", "ThirdPartyService",
	"TokenMetadata", "Upload", "User", "Webhook", "WebhookImplementation", "WebhookRule",
}

// validateNoCollisions checks plugin-declared graph labels (plugins-spec
// §7.7) against the core labels and each other. Two plugins may share a
// label only when both declare exactly the same shape. The first
// collision is returned as a *PluginSchemaCollisionError.
func validateNoCollisions(manifests []plugins.PluginManifest) error {
	return validateNoCollisionsWithCore(manifests, coreVertexLabels)
}

// validateNoCollisionsWithCore is validateNoCollisions with another core
// label list (Python's schemata_path argument).
func validateNoCollisionsWithCore(manifests []plugins.PluginManifest, core []string) error {
	type owned struct {
		owner string
		shape []byte
	}
	vlabels := map[string]owned{}
	edges := map[string]owned{}
	for _, m := range manifests {
		for _, v := range m.VertexLabels {
			if slices.Contains(core, v.Name) {
				return &plugins.PluginSchemaCollisionError{Message: fmt.Sprintf(
					"Plugin '%s' declares vlabel '%s' which collides with core schemata", m.Slug, v.Name)}
			}
			shape, err := v.MarshalJSON()
			if err != nil {
				return err
			}
			if prev, seen := vlabels[v.Name]; seen {
				if !bytes.Equal(prev.shape, shape) {
					return &plugins.PluginSchemaCollisionError{Message: fmt.Sprintf(
						"Plugin '%s' declares vlabel '%s' with a shape that differs from plugin '%s'", m.Slug, v.Name, prev.owner)}
				}
				continue
			}
			vlabels[v.Name] = owned{m.Slug, shape}
		}
		for _, e := range m.EdgeLabels {
			// Encoding is the structural comparison: it treats nil and
			// empty alike and sorts map keys.
			shape, err := e.MarshalJSON()
			if err != nil {
				return err
			}
			if prev, seen := edges[e.Name]; seen {
				if !bytes.Equal(prev.shape, shape) {
					return &plugins.PluginSchemaCollisionError{Message: fmt.Sprintf(
						"Plugin '%s' declares edge label '%s' with a shape that differs from plugin '%s'", m.Slug, e.Name, prev.owner)}
				}
				continue
			}
			edges[e.Name] = owned{m.Slug, shape}
		}
	}
	return nil
}
