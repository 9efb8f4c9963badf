package envelope

import (
	"bytes"
	"fmt"

	jsoniter "github.com/json-iterator/go"
	"github.com/santhosh-tekuri/jsonschema/v6"

	imbiworker "github.com/aweber-imbi/imbi-worker"
	"github.com/aweber-imbi/imbi-worker/wire"
	"github.com/aweber-imbi/imbi-worker/wire/wiredata"
)

// validator checks CloudEvent data against the embedded envelope schema
// (compiled once) and decodes it into wiredata.ActionData.
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

// decode validates data and decodes it into the typed envelope with
// exact key matching: in one pass (decodeFast) when it is sure, else by
// the generic validator and the reference decoder.
func (v *validator) decode(data []byte) (wiredata.ActionData, error) {
	if out, ok := decodeFast(data); ok {
		return out, nil
	}
	if err := v.validateSchema(data); err != nil {
		return wiredata.ActionData{}, err
	}
	return referenceDecode(data)
}

// caseSensitive decodes the envelope with exact key matching, as JSON
// Schema matches property names (encoding/json would let "RULE" fill
// rule).
var caseSensitive = jsoniter.Config{CaseSensitive: true}.Froze()

// referenceDecode is the envelope decode every path must agree with:
// exact key matching, PluginContext by its own (pydantic-lax) decoder.
func referenceDecode(data []byte) (wiredata.ActionData, error) {
	var out wiredata.ActionData
	if err := caseSensitive.Unmarshal(data, &out); err != nil {
		return wiredata.ActionData{}, invalid("data does not decode into the envelope: %v", err)
	}
	return out, nil
}
