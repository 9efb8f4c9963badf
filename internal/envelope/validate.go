package envelope

import (
	"bytes"
	"encoding/json"
	"encoding/json/jsontext"
	jsonv2 "encoding/json/v2"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"

	imbiworker "github.com/aweber-imbi/imbi-worker"
	"github.com/aweber-imbi/imbi-worker/plugins"
	"github.com/aweber-imbi/imbi-worker/wire"
	"github.com/aweber-imbi/imbi-worker/wire/wiredata"
)

// validator decodes CloudEvent data into wiredata.ActionData by one json/v2
// unmarshal into shape types that spell the envelope schema's rules
// (json/v2 rejects wrong JSON types, duplicate names, bad UTF-8 and
// re-cased names itself; reqString and strMap add "required", "not null",
// "values are strings"). The compiled schema only words errors; the oracle
// tests check that whatever decode accepts, the schema accepts.
type validator struct {
	schema *jsonschema.Schema
}

const envelopeSchemaURL = "https://imbi.io/schemas/worker/action-envelope.v1.json"

func newValidator() (*validator, error) {
	raw, err := imbiworker.Schemas.ReadFile(wire.EnvelopeSchemaV1)
	if err != nil {
		return nil, fmt.Errorf("envelope: embedded schema: %w", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("envelope: schema is not JSON: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(envelopeSchemaURL, doc); err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	s, err := c.Compile(envelopeSchemaURL)
	if err != nil {
		return nil, fmt.Errorf("envelope: compile schema: %w", err)
	}
	return &validator{schema: s}, nil
}

// validateSchema runs the generic JSON Schema validator on data.
func (v *validator) validateSchema(data []byte) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return invalid("data is empty")
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return invalid("data is not JSON: %v", err)
	}
	if err := v.schema.Validate(doc); err != nil {
		return invalid("data fails %s: %v", wire.EnvelopeSchemaV1, err)
	}
	return nil
}

// decode validates data and decodes it into the typed envelope.
func (v *validator) decode(data []byte) (wiredata.ActionData, error) {
	out, err := decodeEnvelope(data)
	if err == nil {
		return out, nil
	}
	if serr := v.validateSchema(data); serr != nil {
		return wiredata.ActionData{}, serr
	}
	return wiredata.ActionData{}, invalid("data does not decode into the envelope: %v", err)
}

const handlerMaxLen = 256 // code points, the schema's maxLength

var (
	errRequired  = errors.New("missing a required member")
	errNotObject = errors.New("must be an object or null")
)

// decodeEnvelope decodes data (a whole document).
func decodeEnvelope(data []byte) (wiredata.ActionData, error) {
	var s envelopeShape
	if err := jsonv2.Unmarshal(data, &s); err != nil {
		return wiredata.ActionData{}, err
	}
	return s.build()
}

// envelopeShape is the envelope schema as types json/v2 checks.
type envelopeShape struct {
	Rule *struct {
		ID            string         `json:"id"`
		Handler       reqString      `json:"handler"`
		HandlerConfig jsontext.Value `json:"handler_config"`
		Ordinal       *int           `json:"ordinal"`
	} `json:"rule"`
	Plugin             *wire.PluginRef `json:"plugin"`
	Context            *contextShape   `json:"context"`
	ExternalIdentifier string          `json:"external_identifier"`
	Event              *struct {
		Type              string `json:"type"`
		ThirdPartyService string `json:"third_party_service"`
		AttributedTo      string `json:"attributed_to"`
		Metadata          *struct {
			WebhookID string `json:"webhook_id"`
			Headers   strMap `json:"headers"`
		} `json:"metadata"`
		Payload anyMap `json:"payload"`
	} `json:"event"`
}

// build applies what the types cannot say and builds the envelope.
func (s *envelopeShape) build() (wiredata.ActionData, error) {
	if s.Rule == nil || !s.Rule.Handler.set || s.Context == nil || s.Event == nil {
		return wiredata.ActionData{}, errRequired
	}
	if n := utf8.RuneCountInString(s.Rule.Handler.s); n < 1 || n > handlerMaxLen {
		return wiredata.ActionData{}, errors.New("rule.handler must have 1 to 256 characters")
	}
	if k := s.Rule.HandlerConfig.Kind(); k == '0' || k == 't' || k == 'f' {
		return wiredata.ActionData{}, errors.New("rule.handler_config must be an object, array, string or null")
	}
	ctx, err := s.Context.context()
	if err != nil {
		return wiredata.ActionData{}, err
	}
	out := wiredata.ActionData{
		Rule:               wire.Rule{ID: s.Rule.ID, Handler: s.Rule.Handler.s, HandlerConfig: json.RawMessage(s.Rule.HandlerConfig)},
		Plugin:             s.Plugin,
		Context:            ctx,
		ExternalIdentifier: s.ExternalIdentifier,
		Event: plugins.Event{Type: s.Event.Type, ThirdPartyService: s.Event.ThirdPartyService,
			AttributedTo: s.Event.AttributedTo, Payload: s.Event.Payload},
	}
	if s.Rule.Ordinal != nil {
		out.Rule.Ordinal = *s.Rule.Ordinal
	}
	if m := s.Event.Metadata; m != nil {
		out.Event.Metadata = plugins.EventMetadata{WebhookID: m.WebhookID, Headers: m.Headers}
	}
	return out, nil
}

// contextShape is context: the schema's types, decoded into what
// PluginContext's own decoder builds (the oracle test compares them).
type contextShape struct {
	ProjectID         reqString                    `json:"project_id"`
	ProjectSlug       reqString                    `json:"project_slug"`
	OrgSlug           reqString                    `json:"org_slug"`
	TeamSlug          *string                      `json:"team_slug"`
	Environment       *string                      `json:"environment"`
	AssignmentOptions anyMap                       `json:"assignment_options"`
	ProjectLinks      strMap                       `json:"project_links"`
	ProjectTypeSlugs  []reqString                  `json:"project_type_slugs"`
	EnvironmentConfig anyMap                       `json:"environment_config"`
	ActorUserID       *string                      `json:"actor_user_id"`
	Identity          *plugins.IdentityCredentials `json:"identity"`
}

func (c *contextShape) context() (plugins.PluginContext, error) {
	if !c.ProjectID.set || !c.ProjectSlug.set || !c.OrgSlug.set {
		return plugins.PluginContext{}, errRequired
	}
	out := plugins.PluginContext{
		ProjectID: c.ProjectID.s, ProjectSlug: c.ProjectSlug.s, OrgSlug: c.OrgSlug.s,
		TeamSlug: c.TeamSlug, Environment: c.Environment, AssignmentOptions: c.AssignmentOptions,
		ProjectLinks: c.ProjectLinks, EnvironmentConfig: c.EnvironmentConfig,
		ActorUserID: c.ActorUserID, Identity: c.Identity,
	}
	out.ProjectTypeSlugs = make([]string, len(c.ProjectTypeSlugs)) // model defaults: empty, not nil
	for i, s := range c.ProjectTypeSlugs {
		out.ProjectTypeSlugs[i] = s.s
	}
	out.AssignmentOptions, out.EnvironmentConfig = orEmpty(out.AssignmentOptions), orEmpty(out.EnvironmentConfig)
	out.ProjectLinks = orEmpty(out.ProjectLinks)
	return out, nil
}

func orEmpty[M ~map[string]V, V any](m M) M {
	if m == nil {
		return M{}
	}
	return m
}

// reqString is a member that must be a string (not null).
type reqString struct {
	s   string
	set bool
}

func (r *reqString) UnmarshalJSONFrom(d *jsontext.Decoder) error {
	if d.PeekKind() != '"' {
		return errors.New("must be a string")
	}
	tok, err := d.ReadToken()
	r.s, r.set = tok.String(), err == nil
	return err
}

// strMap is an object whose values are strings, or null.
type strMap map[string]string

func (m *strMap) UnmarshalJSONFrom(d *jsontext.Decoder) error {
	tok, err := d.ReadToken()
	if err != nil || tok.Kind() == 'n' {
		return err
	} else if tok.Kind() != '{' {
		return errNotObject
	}
	*m = make(strMap, 4)
	for err == nil && d.PeekKind() == '"' {
		var v reqString
		if tok, err = d.ReadToken(); err == nil { // jsontext rejects duplicate names
			k := tok.String()
			err = v.UnmarshalJSONFrom(d)
			(*m)[k] = v.s
		}
	}
	if err == nil {
		_, err = d.ReadToken() // '}', or the error at a bad name
	}
	return err
}

// anyMap is an object of any values, or null, read by json/v2's path for
// any (a map field would take the slower reflective one).
type anyMap map[string]any

func (m *anyMap) UnmarshalJSONFrom(d *jsontext.Decoder) error {
	var v any
	if k := d.PeekKind(); k != '{' && k != 'n' {
		return errNotObject
	}
	err := jsonv2.UnmarshalDecode(d, &v)
	*m, _ = v.(map[string]any)
	return err
}
