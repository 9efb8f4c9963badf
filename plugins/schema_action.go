package plugins

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// NewSchemaAction builds a descriptor whose config is described by a JSON
// Schema instead of a Go type: the worker's adapter for actions run
// elsewhere (a Python plugin host, wire contract §D). handler_config is
// validated against schema (compiled here with format assertions, so a
// bad schema fails now) and fn receives it as the validated raw JSON.
func NewSchemaAction(name, label string, schema json.RawMessage, fn ActionFunc[json.RawMessage], opts ...ActionOption) (ActionDescriptor, error) {
	if len(bytes.TrimSpace(schema)) == 0 {
		return ActionDescriptor{}, &ValidationError{Model: "ActionDescriptor", Field: "config_model",
			Message: "config schema is empty"}
	}
	compiled, err := compileSchema("https://imbi-worker.invalid/remote-action-config.json", schema)
	if err != nil {
		return ActionDescriptor{}, &ValidationError{Model: "ActionDescriptor", Field: "config_model",
			Message: err.Error()}
	}
	// NewAction checks name, label and options; its generated schema is
	// replaced by the given one.
	d, err := NewAction(name, label, fn, opts...)
	if err != nil {
		return ActionDescriptor{}, err
	}
	d.impl = &schemaAction{typed: d.impl, schema: compiled, raw: schema}
	return d, nil
}

// schemaAction is a json.RawMessage action validated by a given schema.
type schemaAction struct {
	typed  actionImpl
	schema *jsonschema.Schema
	raw    json.RawMessage
}

func (a *schemaAction) schemaJSON() json.RawMessage { return a.raw }
func (a *schemaAction) funcName() string            { return a.typed.funcName() }
func (a *schemaAction) configTypeName() string      { return "json-schema" }
func (a *schemaAction) run(ctx context.Context, inv Invocation) error {
	return a.typed.run(ctx, inv)
}

func (a *schemaAction) decode(name string, raw json.RawMessage) (any, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		raw = []byte("{}")
	}
	if raw[0] == '"' {
		var inner string
		if err := json.Unmarshal(raw, &inner); err != nil {
			return nil, &ConfigError{Action: name, Err: err}
		}
		raw = []byte(inner)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, &ConfigError{Action: name, Err: fmt.Errorf("not valid JSON: %w", err)}
	}
	if err := a.schema.Validate(doc); err != nil {
		return nil, &ConfigError{Action: name, Err: err}
	}
	return json.RawMessage(bytes.Clone(raw)), nil
}
