package envelope

import (
	"bytes"
	"fmt"

	"github.com/santhosh-tekuri/jsonschema/v6"

	imbiworker "github.com/aweber-imbi/imbi-worker"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// validator checks CloudEvent data against the embedded envelope schema
// (compiled once) and decodes it into wire.ActionData.
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

// decode validates data (fast path, else the generic validator) and
// decodes it into the typed envelope with exact key matching.
func (v *validator) decode(data []byte) (wire.ActionData, error) {
	if fastValid(data) {
		if out, ok := fastDecode(data); ok {
			return out, nil
		}
	} else if err := v.validateSchema(data); err != nil {
		return wire.ActionData{}, err
	}
	return referenceDecode(data)
}

// referenceDecode is the envelope decode every path must agree with:
// exact key matching, PluginContext by its own (pydantic-lax) decoder.
func referenceDecode(data []byte) (wire.ActionData, error) {
	var out wire.ActionData
	if err := caseSensitive.Unmarshal(data, &out); err != nil {
		return wire.ActionData{}, invalid("data does not decode into the envelope: %v", err)
	}
	return out, nil
}
