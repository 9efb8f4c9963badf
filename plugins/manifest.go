package plugins

import (
	"encoding/json"
	"fmt"
	"strings"
)

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
// Type is one of OptionTypes (default "string" when decoded). Default is
// a string, int64, bool or nil; it is not checked against Type (Python
// does not either). Choices nil is JSON null ("no choices").
type PluginOption struct {
	Name        string   `json:"name"`
	Label       string   `json:"label"`
	Description *string  `json:"description"`
	Type        string   `json:"type"`
	Required    bool     `json:"required"`
	Default     any      `json:"default"`
	Choices     []string `json:"choices" imbi:"nullable"`
}

// CredentialField is a secret the operator supplies (plugins-spec §4.2).
// Required defaults to true when decoded from JSON, as in Python; a field
// built in Go has Go's zero value false, so set Required: true (or use
// NewCredentialField) for a secret the plugin cannot run without.
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

// Option types (PluginOption.type, plugins-spec §3).
const (
	OptionString  = "string"
	OptionInteger = "integer"
	OptionBoolean = "boolean"
	OptionSecret  = "secret"
)

// Closed value sets of plugins-spec §3, in Python's declaration order
// (error messages list them in this order).
var (
	pluginTypes = []PluginType{TypeConfiguration, TypeLogs, TypeIdentity, TypeDeployment, TypeLifecycle, TypeWebhook}
	authTypes   = []AuthType{AuthAPIToken, AuthOAuth2, AuthOIDC, AuthAWSIAMIC}
	optionTypes = []string{OptionString, OptionInteger, OptionBoolean, OptionSecret}
)

// NewManifest returns a manifest with Python's defaults (api_version 1,
// auth_type api_token, cacheable true, empty lists and maps): the Go
// spelling of PluginManifest(slug=…, name=…, plugin_type=…).
func NewManifest(slug, name string, t PluginType) PluginManifest {
	return PluginManifest{Slug: slug, Name: name, PluginType: t, Cacheable: true}.WithDefaults()
}

// NewCredentialField returns a required credential field, Python's default.
func NewCredentialField(name, label string) CredentialField {
	return CredentialField{Name: name, Label: label, Required: true}
}

// WithDefaults fills the fields a Go literal leaves at their zero value
// with Python's defaults: auth_type "" → api_token, api_version 0 → 1,
// nil lists/maps → empty, option type "" → string. Booleans cannot be
// told apart from an explicit false and are left alone (cacheable!).
// The registry applies it to every manifest it loads.
func (m PluginManifest) WithDefaults() PluginManifest {
	if m.AuthType == "" {
		m.AuthType = AuthAPIToken
	}
	if m.APIVersion == 0 {
		m.APIVersion = 1
	}
	m.DefaultScopes = nonNil(m.DefaultScopes)
	m.Credentials = nonNil(m.Credentials)
	m.DataTypes = nonNil(m.DataTypes)
	m.VertexLabels = nonNil(m.VertexLabels)
	m.EdgeLabels = nonNil(m.EdgeLabels)
	if m.OpsLogTemplates == nil {
		m.OpsLogTemplates = map[string]OpsLogTemplate{}
	}
	opts := make([]PluginOption, len(m.Options))
	for i, o := range m.Options {
		if o.Type == "" {
			o.Type = OptionString
		}
		opts[i] = o
	}
	m.Options = opts
	return m
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// Validate checks a manifest built in Go against the same rules that
// decoding JSON applies (enums, PluginIndex constraints, required
// fields): it encodes the value and decodes it back, so a Go-built
// manifest is valid exactly when Python would accept its JSON. Run
// WithDefaults first for a literal that relies on Python's defaults.
func (m PluginManifest) Validate() error { return revalidate(m, &PluginManifest{}) }

// revalidate is the shared Validate: encode v, decode into fresh.
func revalidate(v json.Marshaler, fresh json.Unmarshaler) error {
	raw, err := v.MarshalJSON()
	if err != nil {
		return err
	}
	return fresh.UnmarshalJSON(raw)
}

// MarshalJSON emits every field in declaration order, as model_dump_json.
func (m PluginManifest) MarshalJSON() ([]byte, error) {
	type plain PluginManifest
	return encodeModel(plain(m))
}

// UnmarshalJSON decodes with Python's defaults and validation.
func (m *PluginManifest) UnmarshalJSON(data []byte) error {
	d, err := newObjectDecoder("PluginManifest", data)
	if err != nil {
		return err
	}
	v := PluginManifest{AuthType: AuthAPIToken, APIVersion: 1, Cacheable: true}
	field(d, "slug", &v.Slug, required, parseString)
	field(d, "name", &v.Name, required, parseString)
	field(d, "description", &v.Description, nullable, optStr)
	field(d, "plugin_type", &v.PluginType, required, parseEnum(pluginTypes...))
	field(d, "auth_type", &v.AuthType, withDefault, parseEnum(authTypes...))
	field(d, "api_version", &v.APIVersion, withDefault, parseInt)
	field(d, "cacheable", &v.Cacheable, withDefault, parseBool)
	field(d, "supports_histogram", &v.SupportsHistogram, withDefault, parseBool)
	field(d, "supports_deployment_sync", &v.SupportsDeploymentSync, withDefault, parseBool)
	field(d, "login_capable", &v.LoginCapable, withDefault, parseBool)
	field(d, "requires_identity", &v.RequiresIdentity, withDefault, parseBool)
	field(d, "default_scopes", &v.DefaultScopes, withDefault, strList)
	field(d, "options", &v.Options, withDefault, parseList(model[PluginOption]()))
	field(d, "credentials", &v.Credentials, withDefault, parseList(model[CredentialField]()))
	field(d, "data_types", &v.DataTypes, withDefault, parseList(model[DataType]()))
	field(d, "vertex_labels", &v.VertexLabels, withDefault, parseList(model[PluginVertexLabel]()))
	field(d, "edge_labels", &v.EdgeLabels, withDefault, parseList(model[PluginEdgeLabel]()))
	field(d, "widget_text", &v.WidgetText, nullable, optStr)
	field(d, "ops_log_templates", &v.OpsLogTemplates, withDefault, parseMap(model[OpsLogTemplate]()))
	return store(d, m, v)
}

func (o PluginOption) MarshalJSON() ([]byte, error) {
	type plain PluginOption
	return encodeModel(plain(o))
}

func (o *PluginOption) UnmarshalJSON(data []byte) error {
	d, err := newObjectDecoder("PluginOption", data)
	if err != nil {
		return err
	}
	v := PluginOption{Type: OptionString}
	field(d, "name", &v.Name, required, parseString)
	field(d, "label", &v.Label, required, parseString)
	field(d, "description", &v.Description, nullable, optStr)
	field(d, "type", &v.Type, withDefault, parseEnum(optionTypes...))
	field(d, "required", &v.Required, withDefault, parseBool)
	field(d, "default", &v.Default, nullable, optionDefault)
	field(d, "choices", &v.Choices, nullable, strList)
	return store(d, o, v)
}

func (c CredentialField) MarshalJSON() ([]byte, error) {
	type plain CredentialField
	return encodeModel(plain(c))
}

func (c *CredentialField) UnmarshalJSON(data []byte) error {
	d, err := newObjectDecoder("CredentialField", data)
	if err != nil {
		return err
	}
	v := CredentialField{Required: true}
	field(d, "name", &v.Name, required, parseString)
	field(d, "label", &v.Label, required, parseString)
	field(d, "description", &v.Description, nullable, optStr)
	field(d, "required", &v.Required, withDefault, parseBool)
	return store(d, c, v)
}

func (t DataType) MarshalJSON() ([]byte, error) {
	type plain DataType
	return encodeModel(plain(t))
}

func (t *DataType) UnmarshalJSON(data []byte) error {
	d, err := newObjectDecoder("DataType", data)
	if err != nil {
		return err
	}
	var v DataType
	field(d, "name", &v.Name, required, parseString)
	field(d, "label", &v.Label, required, parseString)
	field(d, "secret", &v.Secret, withDefault, parseBool)
	return store(d, t, v)
}

func (x PluginIndex) MarshalJSON() ([]byte, error) {
	type plain PluginIndex
	return encodeModel(plain(x))
}

func (x *PluginIndex) UnmarshalJSON(data []byte) error {
	d, err := newObjectDecoder("PluginIndex", data)
	if err != nil {
		return err
	}
	var v PluginIndex
	field(d, "fields", &v.Fields, required, strList)
	field(d, "unique", &v.Unique, withDefault, parseBool)
	if d.err != nil {
		return d.err
	}
	if err := v.Validate(); err != nil {
		return err
	}
	*x = v
	return nil
}

// Validate applies PluginIndex's field validator (plugins-spec §4.4).
func (x PluginIndex) Validate() error {
	if len(x.Fields) == 0 {
		return &ValidationError{Model: "PluginIndex", Field: "fields",
			Message: "Value error, PluginIndex.fields must contain at least one field name"}
	}
	for _, f := range x.Fields {
		if strings.TrimSpace(f) == "" {
			return &ValidationError{Model: "PluginIndex", Field: "fields",
				Message: fmt.Sprintf("Value error, PluginIndex.fields entries must be non-empty and non-whitespace; got %q", f)}
		}
	}
	return nil
}

func (l PluginVertexLabel) MarshalJSON() ([]byte, error) {
	type plain PluginVertexLabel
	return encodeModel(plain(l))
}

func (l *PluginVertexLabel) UnmarshalJSON(data []byte) error {
	d, err := newObjectDecoder("PluginVertexLabel", data)
	if err != nil {
		return err
	}
	var v PluginVertexLabel
	field(d, "name", &v.Name, required, parseString)
	field(d, "indexes", &v.Indexes, withDefault, parseList(model[PluginIndex]()))
	field(d, "model_ref", &v.ModelRef, required, parseString)
	field(d, "display_name", &v.DisplayName, nullable, optStr)
	field(d, "description", &v.Description, nullable, optStr)
	field(d, "nav_label", &v.NavLabel, nullable, optStr)
	return store(d, l, v)
}

func (l PluginEdgeLabel) MarshalJSON() ([]byte, error) {
	type plain PluginEdgeLabel
	return encodeModel(plain(l))
}

func (l *PluginEdgeLabel) UnmarshalJSON(data []byte) error {
	d, err := newObjectDecoder("PluginEdgeLabel", data)
	if err != nil {
		return err
	}
	var v PluginEdgeLabel
	field(d, "name", &v.Name, required, parseString)
	field(d, "from_labels", &v.FromLabels, required, strList)
	field(d, "to_labels", &v.ToLabels, required, strList)
	field(d, "properties", &v.Properties, withDefault, strMap)
	return store(d, l, v)
}

func (t OpsLogTemplate) MarshalJSON() ([]byte, error) {
	type plain OpsLogTemplate
	return encodeModel(plain(t))
}

func (t *OpsLogTemplate) UnmarshalJSON(data []byte) error {
	d, err := newObjectDecoder("OpsLogTemplate", data)
	if err != nil {
		return err
	}
	var v OpsLogTemplate
	field(d, "label", &v.Label, required, parseString)
	field(d, "summary", &v.Summary, nullable, optStr)
	return store(d, t, v)
}
