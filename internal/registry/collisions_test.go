package registry_test

// Conformance: test_schemas.py cases 113–121 (plugins-spec §12): the
// registry's graph-label collision check (§7.7).

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/registry"
	"github.com/aweber-imbi/imbi-worker/plugins"
)

func vlabel(name, modelRef string) plugins.PluginVertexLabel {
	return plugins.PluginVertexLabel{Name: name, ModelRef: modelRef}
}

func manifestWith(slug string, v []plugins.PluginVertexLabel, e []plugins.PluginEdgeLabel) plugins.PluginManifest {
	m := plugins.NewManifest(slug, slug, plugins.TypeConfiguration)
	m.VertexLabels, m.EdgeLabels = v, e
	return m
}

// Cases 113–121 (116 is the PluginIndex round trip).
func TestValidateNoCollisions(t *testing.T) {
	edge := func(to ...string) plugins.PluginEdgeLabel {
		return plugins.PluginEdgeLabel{Name: "OWNS", FromLabels: []string{"Team"}, ToLabels: to, Properties: map[string]string{"since": "datetime"}}
	}
	diverging := edge("Account")
	diverging.Properties = map[string]string{"since": "datetime", "role": "str"}
	tests := []struct {
		name      string
		manifests []plugins.PluginManifest
		wantErr   string
	}{
		{"disjoint_manifests_pass", []plugins.PluginManifest{
			manifestWith("a", []plugins.PluginVertexLabel{vlabel("AwsAccount", "a:M")}, nil),
			manifestWith("b", []plugins.PluginVertexLabel{vlabel("GcpProject", "b:M")}, nil)}, ""},
		{"collision_with_core", []plugins.PluginManifest{
			manifestWith("a", []plugins.PluginVertexLabel{vlabel("User", "a:M")}, nil)},
			"Plugin 'a' declares vlabel 'User' which collides with core schemata"},
		{"collision_between_plugins", []plugins.PluginManifest{
			manifestWith("a", []plugins.PluginVertexLabel{vlabel("Account", "a:Account")}, nil),
			manifestWith("b", []plugins.PluginVertexLabel{vlabel("Account", "b:Account")}, nil)},
			"Plugin 'b' declares vlabel 'Account' with a shape that differs from plugin 'a'"},
		{"edge_label_collision_between_plugins", []plugins.PluginManifest{
			manifestWith("a", nil, []plugins.PluginEdgeLabel{edge("Account")}),
			manifestWith("b", nil, []plugins.PluginEdgeLabel{edge("Project")})},
			"Plugin 'b' declares edge label 'OWNS' with a shape that differs from plugin 'a'"},
		{"disjoint_edge_labels_pass", []plugins.PluginManifest{
			manifestWith("a", nil, []plugins.PluginEdgeLabel{edge("Account")}),
			manifestWith("b", nil, []plugins.PluginEdgeLabel{{Name: "USES", FromLabels: []string{"Project"}, ToLabels: []string{"Account"}}})}, ""},
		{"identical_edge_labels_allowed", []plugins.PluginManifest{
			manifestWith("a", nil, []plugins.PluginEdgeLabel{edge("Account")}),
			manifestWith("b", nil, []plugins.PluginEdgeLabel{edge("Account")}),
			manifestWith("c", nil, []plugins.PluginEdgeLabel{edge("Account")})}, ""},
		{"diverging_edge_label_shape_rejected", []plugins.PluginManifest{
			manifestWith("a", nil, []plugins.PluginEdgeLabel{edge("Account")}),
			manifestWith("b", nil, []plugins.PluginEdgeLabel{diverging})},
			"Plugin 'b' declares edge label 'OWNS' with a shape that differs from plugin 'a'"},
		{"identical_vlabels_allowed", []plugins.PluginManifest{
			manifestWith("a", []plugins.PluginVertexLabel{vlabel("Account", "shared:Account")}, nil),
			manifestWith("b", []plugins.PluginVertexLabel{vlabel("Account", "shared:Account")}, nil)}, ""},
		{"nil_and_empty_indexes_are_the_same_shape", []plugins.PluginManifest{
			manifestWith("a", []plugins.PluginVertexLabel{{Name: "Account", ModelRef: "s:A", Indexes: nil}}, nil),
			manifestWith("b", []plugins.PluginVertexLabel{{Name: "Account", ModelRef: "s:A", Indexes: []plugins.PluginIndex{}}}, nil)}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := registry.ValidateNoCollisions(tc.manifests)
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, plugins.ErrSchemaCollision)
			require.EqualError(t, err, tc.wantErr)
		})
	}
	t.Run("index_field_round_trip", func(t *testing.T) {
		data, err := json.Marshal(plugins.PluginIndex{Fields: []string{"account_id", "region"}, Unique: true})
		require.NoError(t, err)
		var idx plugins.PluginIndex
		require.NoError(t, json.Unmarshal(data, &idx))
		require.Equal(t, plugins.PluginIndex{Fields: []string{"account_id", "region"}, Unique: true}, idx)
	})
	require.Contains(t, registry.CoreVertexLabels(), "WebhookRule")
	require.Len(t, registry.CoreVertexLabels(), 31)
}
