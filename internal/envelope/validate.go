package envelope

import (
	"bytes"
	"cmp"
	"encoding/json"
	"encoding/json/jsontext"
	jsonv2 "encoding/json/v2"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"

	imbiworker "github.com/aweber-imbi/imbi-worker"
	"github.com/aweber-imbi/imbi-worker/plugins"
	"github.com/aweber-imbi/imbi-worker/wire"
	"github.com/aweber-imbi/imbi-worker/wire/wiredata"
)

// validator decodes CloudEvent data into wiredata.ActionData: one walk of
// jsontext tokens that spells the envelope schema's shape (readEnvelope);
// jsontext rejects bad syntax, duplicate names and bad UTF-8, names match
// exactly, the free-form objects take json/v2's any path. The compiled
// schema only words errors; the oracle tests check that whatever decode
// accepts, the schema accepts and a reference decode equals.
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
	errNotObject = errors.New("must be an object")
	errNotString = errors.New("must be a string")
)

// decodeEnvelope decodes data (a whole document).
func decodeEnvelope(data []byte) (wiredata.ActionData, error) {
	d := decoders.Get().(*jsontext.Decoder)
	defer decoders.Put(d)
	d.Reset(bytes.NewBuffer(data))
	out, err := readEnvelope(d)
	if err == nil {
		if _, err = d.ReadToken(); err == io.EOF {
			return out, nil
		} else if err == nil {
			err = errors.New("data after the JSON object")
		}
	}
	return wiredata.ActionData{}, err
}

// readEnvelope reads the envelope object at d (decision 0008 §2): a
// member of the wrong JSON type is an error, null is what json/v2 makes
// of it (zero, nil), unknown members are skipped, required members must
// be there (and not null where the schema says so).
func readEnvelope(d *jsontext.Decoder) (out wiredata.ActionData, err error) {
	var rule, handler, ctx, ev bool
	if null, err := open(d); err != nil || null {
		return out, cmp.Or(err, errRequired)
	}
	for tok, ok := member(d, &err); ok; tok, ok = member(d, &err) {
		switch tok.String() {
		case "rule":
			rule = true
			err = readRule(d, &out.Rule, &handler)
		case "plugin":
			err = jsonv2.UnmarshalDecode(d, &out.Plugin)
		case "context":
			ctx = true
			err = readContext(d, &out.Context)
		case "external_identifier":
			err = str(d, &out.ExternalIdentifier)
		case "event":
			ev = true
			err = readEvent(d, &out.Event)
		default:
			err = d.SkipValue()
		}
	}
	if err = closeObj(d, err); err == nil && (!rule || !handler || !ctx || !ev) {
		err = errRequired
	}
	return out, err
}

func readRule(d *jsontext.Decoder, r *wire.Rule, handler *bool) (err error) {
	if null, err := open(d); err != nil || null {
		return cmp.Or(err, errRequired)
	}
	for tok, ok := member(d, &err); ok; tok, ok = member(d, &err) {
		switch tok.String() {
		case "id":
			err = str(d, &r.ID)
		case "handler":
			if err = reqStr(d, &r.Handler); err == nil {
				*handler = true
				if n := utf8.RuneCountInString(r.Handler); n < 1 || n > handlerMaxLen {
					err = errors.New("rule.handler must have 1 to 256 characters")
				}
			}
		case "handler_config":
			var v jsontext.Value
			if v, err = d.ReadValue(); err == nil {
				if k := v.Kind(); k == '0' || k == 't' || k == 'f' {
					err = errors.New("rule.handler_config must be an object, array, string or null")
				}
				r.HandlerConfig = json.RawMessage(bytes.Clone(v))
			}
		case "ordinal":
			var v jsontext.Value
			if v, err = d.ReadValue(); err == nil && v.Kind() != 'n' {
				var n int64
				n, err = strconv.ParseInt(string(v), 10, 0)
				r.Ordinal = int(n)
			}
		default:
			err = d.SkipValue()
		}
	}
	return closeObj(d, err)
}

// readContext reads context into what PluginContext's own decoder builds
// (its defaults included; the oracle test compares them).
func readContext(d *jsontext.Decoder, c *plugins.PluginContext) (err error) {
	var id, slug, org bool
	if null, err := open(d); err != nil || null {
		return cmp.Or(err, errRequired)
	}
	for tok, ok := member(d, &err); ok; tok, ok = member(d, &err) {
		switch tok.String() {
		case "project_id":
			id, err = true, reqStr(d, &c.ProjectID)
		case "project_slug":
			slug, err = true, reqStr(d, &c.ProjectSlug)
		case "org_slug":
			org, err = true, reqStr(d, &c.OrgSlug)
		case "team_slug":
			c.TeamSlug, err = optStr(d)
		case "environment":
			c.Environment, err = optStr(d)
		case "actor_user_id":
			c.ActorUserID, err = optStr(d)
		case "assignment_options":
			c.AssignmentOptions, err = anyObject(d)
		case "environment_config":
			c.EnvironmentConfig, err = anyObject(d)
		case "project_links":
			c.ProjectLinks, err = strObject(d)
		case "project_type_slugs":
			c.ProjectTypeSlugs, err = strArray(d)
		case "identity":
			err = jsonv2.UnmarshalDecode(d, &c.Identity) // its own decoder
		default:
			err = d.SkipValue()
		}
	}
	if err = closeObj(d, err); err == nil && (!id || !slug || !org) {
		return errRequired
	}
	c.AssignmentOptions, c.EnvironmentConfig = orEmpty(c.AssignmentOptions), orEmpty(c.EnvironmentConfig)
	if c.ProjectLinks = orEmpty(c.ProjectLinks); c.ProjectTypeSlugs == nil {
		c.ProjectTypeSlugs = []string{}
	}
	return err
}

func readEvent(d *jsontext.Decoder, e *plugins.Event) (err error) {
	if null, err := open(d); err != nil || null {
		return cmp.Or(err, errRequired)
	}
	for tok, ok := member(d, &err); ok; tok, ok = member(d, &err) {
		switch tok.String() {
		case "type":
			err = str(d, &e.Type)
		case "third_party_service":
			err = str(d, &e.ThirdPartyService)
		case "attributed_to":
			err = str(d, &e.AttributedTo)
		case "metadata":
			e.Metadata = plugins.EventMetadata{}
			var null bool
			if null, err = open(d); err != nil || null {
				break
			}
			for tok, ok := member(d, &err); ok; tok, ok = member(d, &err) {
				switch tok.String() {
				case "webhook_id":
					err = str(d, &e.Metadata.WebhookID)
				case "headers":
					e.Metadata.Headers, err = strObject(d)
				default:
					err = d.SkipValue()
				}
			}
			err = closeObj(d, err)
		case "payload":
			e.Payload, err = anyObject(d)
		default:
			err = d.SkipValue()
		}
	}
	return closeObj(d, err)
}

// open reads '{' or null.
func open(d *jsontext.Decoder) (null bool, err error) {
	switch d.PeekKind() {
	case 'n':
		_, err = d.ReadToken()
		return true, err
	case '{':
		_, err = d.ReadToken()
		return false, err
	}
	return false, cmp.Or(d.SkipValue(), errNotObject)
}

// member reads the next member name; false at the end or on an error (*err).
func member(d *jsontext.Decoder, err *error) (tok jsontext.Token, ok bool) {
	if *err != nil || d.PeekKind() != '"' {
		return tok, false
	}
	tok, *err = d.ReadToken()
	return tok, *err == nil
}

// closeObj reads the '}' after the members, unless err.
func closeObj(d *jsontext.Decoder, err error) error {
	if err == nil {
		_, err = d.ReadToken() // also fails on a bad member name
	}
	return err
}

// str reads a string or null (""), reqStr a string, optStr a string or null (nil).
func str(d *jsontext.Decoder, s *string) error {
	if d.PeekKind() == 'n' {
		_, err := d.ReadToken()
		return err
	}
	return reqStr(d, s)
}

func reqStr(d *jsontext.Decoder, s *string) error {
	if d.PeekKind() != '"' {
		return errNotString
	}
	tok, err := d.ReadToken()
	*s = tok.String()
	return err
}

func optStr(d *jsontext.Decoder) (*string, error) {
	if d.PeekKind() == 'n' {
		_, err := d.ReadToken()
		return nil, err
	}
	s := new(string)
	return s, reqStr(d, s)
}

// anyObject reads an object or null by json/v2's any path (a map field
// would take the slower reflective one).
func anyObject(d *jsontext.Decoder) (map[string]any, error) {
	if k := d.PeekKind(); k != '{' && k != 'n' {
		return nil, errNotObject
	}
	var v any
	err := jsonv2.UnmarshalDecode(d, &v)
	m, _ := v.(map[string]any)
	return m, err
}

// strObject reads an object of strings, or null.
func strObject(d *jsontext.Decoder) (m map[string]string, err error) {
	if null, err := open(d); err != nil || null {
		return nil, err
	}
	m = make(map[string]string, 4)
	for tok, ok := member(d, &err); ok; tok, ok = member(d, &err) {
		name := tok.String()
		var v string
		err = reqStr(d, &v)
		m[name] = v
	}
	return m, closeObj(d, err)
}

// strArray reads an array of strings, or null.
func strArray(d *jsontext.Decoder) (a []string, err error) {
	switch d.PeekKind() {
	case 'n':
		_, err = d.ReadToken()
		return nil, err
	case '[':
		_, err = d.ReadToken()
	default:
		return nil, errors.New("must be an array")
	}
	a = []string{}
	for err == nil && d.PeekKind() != ']' {
		var v string
		err = reqStr(d, &v)
		a = append(a, v)
	}
	return a, closeObj(d, err)
}

func orEmpty[M ~map[string]V, V any](m M) M {
	if m == nil {
		return M{}
	}
	return m
}
