package envelope

import (
	"bytes"
	"fmt"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"encoding/json/jsontext"
	imbiworker "github.com/aweber-imbi/imbi-worker"
	"github.com/aweber-imbi/imbi-worker/wire"
	"github.com/aweber-imbi/imbi-worker/wire/wiredata"
)

// validator is the oracle's side of the envelope JSON Schema
// (testdata/schemas/action-envelope.v1.json, compiled with formats
// asserted) next to the decoder under test.
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
		return nil, err
	}
	s, err := c.Compile(envelopeSchemaURL)
	if err != nil {
		return nil, fmt.Errorf("envelope: compile schema: %w", err)
	}
	return &validator{schema: s}, nil
}

// validateSchema runs the generic JSON Schema validator on data.
func (v *validator) validateSchema(data []byte) error {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return err
	}
	return v.schema.Validate(doc)
}

// decode is the decoder under test.
func (*validator) decode(data []byte) (wiredata.ActionData, jsontext.Value, error) {
	return decodeEnvelope(data)
}
