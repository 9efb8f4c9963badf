package plugins

// PluginType is the manifest's variation discriminator (plugins-spec §3).
type PluginType string

const (
	TypeConfiguration PluginType = "configuration"
	TypeLogs          PluginType = "logs"
	TypeIdentity      PluginType = "identity"
	TypeDeployment    PluginType = "deployment"
	TypeLifecycle     PluginType = "lifecycle"
	TypeWebhook       PluginType = "webhook"
)

// AuthType routes credential resolution (plugins-spec §10.4).
type AuthType string

const (
	AuthAPIToken AuthType = "api_token"
	AuthOAuth2   AuthType = "oauth2"
	AuthOIDC     AuthType = "oidc"
	AuthAWSIAMIC AuthType = "aws-iam-ic"
)

// SupportedAPIVersions are the manifest api_version values the registry loads.
var SupportedAPIVersions = []int{1}

// PluginManifest describes a plugin (plugins-spec §4.8). Field order is
// Python's declaration order; JSON names are Python's.
type PluginManifest struct {
	Slug                   string                    `json:"slug"`
	Name                   string                    `json:"name"`
	Description            *string                   `json:"description"`
	PluginType             PluginType                `json:"plugin_type"`
	AuthType               AuthType                  `json:"auth_type"`
	APIVersion             int                       `json:"api_version"`
	Cacheable              bool                      `json:"cacheable"`
	SupportsHistogram      bool                      `json:"supports_histogram"`
	SupportsDeploymentSync bool                      `json:"supports_deployment_sync"`
	LoginCapable           bool                      `json:"login_capable"`
	RequiresIdentity       bool                      `json:"requires_identity"`
	DefaultScopes          []string                  `json:"default_scopes"`
	Options                []PluginOption            `json:"options"`
	Credentials            []CredentialField         `json:"credentials"`
	DataTypes              []DataType                `json:"data_types"`
	VertexLabels           []PluginVertexLabel       `json:"vertex_labels"`
	EdgeLabels             []PluginEdgeLabel         `json:"edge_labels"`
	WidgetText             *string                   `json:"widget_text"`
	OpsLogTemplates        map[string]OpsLogTemplate `json:"ops_log_templates"`
}

// RequiredCredentials returns the names of credential fields marked
// required, in manifest order.
func (m PluginManifest) RequiredCredentials() []string {
	var out []string
	for _, c := range m.Credentials {
		if c.Required {
			out = append(out, c.Name)
		}
	}
	return out
}

// PluginOption is an operator-configurable option (plugins-spec §4.1).
// Default is a string, int64, bool or nil.
type PluginOption struct {
	Name        string   `json:"name"`
	Label       string   `json:"label"`
	Description *string  `json:"description"`
	Type        string   `json:"type"`
	Required    bool     `json:"required"`
	Default     any      `json:"default"`
	Choices     []string `json:"choices"`
}

// CredentialField is a secret the operator supplies (plugins-spec §4.2).
// Required defaults to true when decoded from JSON.
type CredentialField struct {
	Name        string  `json:"name"`
	Label       string  `json:"label"`
	Description *string `json:"description"`
	Required    bool    `json:"required"`
}

// DataType is a configuration value type (plugins-spec §4.3).
type DataType struct {
	Name   string `json:"name"`
	Label  string `json:"label"`
	Secret bool   `json:"secret"`
}

// PluginIndex is an index on a plugin-declared vertex label (§4.4).
type PluginIndex struct {
	Fields []string `json:"fields"`
	Unique bool     `json:"unique"`
}

// PluginVertexLabel is a plugin-owned graph label (§4.5).
type PluginVertexLabel struct {
	Name        string        `json:"name"`
	Indexes     []PluginIndex `json:"indexes"`
	ModelRef    string        `json:"model_ref"`
	DisplayName *string       `json:"display_name"`
	Description *string       `json:"description"`
	NavLabel    *string       `json:"nav_label"`
}

// PluginEdgeLabel is a plugin-owned edge label (§4.6).
type PluginEdgeLabel struct {
	Name       string            `json:"name"`
	FromLabels []string          `json:"from_labels"`
	ToLabels   []string          `json:"to_labels"`
	Properties map[string]string `json:"properties"`
}

// OpsLogTemplate is an ops-log rendering hint (§4.7).
type OpsLogTemplate struct {
	Label   string  `json:"label"`
	Summary *string `json:"summary"`
}
