package gatewayactions

import (
	"encoding/json"
	"errors"
	"fmt"

	invopop "github.com/invopop/jsonschema"
)

// The config types below are the handler_config shapes of imbi-gateway at
// 06-05 (d24b7218). Their generated JSON Schemas accept exactly what the
// pydantic models accept (testdata/gateway-actions/samples.json holds the
// verdicts pydantic gave; TestConfigsAcceptWhatPydanticAccepts replays
// them):
//   - unknown keys are ignored (pydantic's extra='ignore');
//   - keys match exactly: encoding/json would also match "Title_Selector"
//     to title_selector, so each type decodes through decodeExact;
//   - optional fields accept null (pydantic's `X | None = None`);
//   - JSON Pointers are {"type":"string","format":"json-pointer"}, which
//     the SDK's compiled schema asserts; Validate re-parses them as
//     python-jsonpointer does.

// UpdateProjectRule maps one value of the event onto the project.
type UpdateProjectRule struct {
	// Path is where the value goes on the Imbi project (RFC 6902 "add").
	Path Pointer `json:"path" jsonschema:"title=Path,description=JSON Pointer on the Imbi project to patch."`
	// From is where the value comes from in the event (body under /payload).
	From Pointer `json:"from" jsonschema:"title=From,description=JSON Pointer on the event context to read; the webhook body is under \"/payload\" (e.g. \"/payload/repo/name\")."`
}

// UpdateProjectConfig is update_project's handler_config: a JSON array of
// {path, from}, applied in order as one JSON Patch.
type UpdateProjectConfig []UpdateProjectRule

// CreateReleaseConfig is create_release's handler_config.
type CreateReleaseConfig struct {
	// TitleSelector points at the release title in the event.
	TitleSelector Pointer `json:"title_selector" jsonschema:"title=Title Selector"`
	// CommittishExpression is CEL giving the short SHA (required by the
	// API); null skips the release.
	CommittishExpression string `json:"committish_expression" jsonschema:"title=Committish Expression"`
	// VersionExpression is CEL giving the tag; absent or null leaves the
	// tag off.
	VersionExpression *string `json:"version_expression,omitempty" jsonschema:"title=Version Expression"`
}

// AddDeploymentEventConfig is add_deployment_event's handler_config.
type AddDeploymentEventConfig struct {
	EnvironmentSelector  Pointer `json:"environment_selector" jsonschema:"title=Environment Selector"`
	CommittishExpression string  `json:"committish_expression" jsonschema:"title=Committish Expression"`
	StatusSelector       Pointer `json:"status_selector" jsonschema:"title=Status Selector"`
	// VersionExpression narrows the release lookup to a tag when set.
	VersionExpression     *string  `json:"version_expression,omitempty" jsonschema:"title=Version Expression"`
	NoteSelector          *Pointer `json:"note_selector,omitempty" jsonschema:"title=Note Selector"`
	ExternalRunIDSelector *Pointer `json:"external_run_id_selector,omitempty" jsonschema:"title=External Run Id Selector"`
}

// IngestSbomConfig is ingest_sbom's handler_config.
type IngestSbomConfig struct {
	// VersionExpression is CEL giving the release tag the SBoM belongs to.
	VersionExpression string `json:"version_expression" jsonschema:"title=Version Expression"`
	// SbomSelector points at the CycloneDX document; default "/payload"
	// (the whole body). Not nullable, as in pydantic.
	SbomSelector Pointer `json:"sbom_selector" jsonschema:"title=Sbom Selector,description=JSON Pointer at the CycloneDX document inside the event context. Defaults to \"/payload\" (the entire webhook body)."`
	// CommittishExpression, when set, lets the action create a missing
	// release: the value is lowercased and cut to 7 hex characters.
	CommittishExpression *string `json:"committish_expression,omitempty" jsonschema:"title=Committish Expression,description=CEL expression resolving to the short commit SHA used to auto-create a release when none matches the resolved version. The resolved value is lowercased and truncated to the first 7 hex characters before being sent to the API. When omitted\\, missing releases are logged and skipped."`
	// TitleSelector is the auto-created release's title; default
	// "Release <version>".
	TitleSelector *Pointer `json:"title_selector,omitempty" jsonschema:"title=Title Selector,description=Optional JSON Pointer at the release title used when auto-creating. Defaults to \"Release <version>\" when omitted or the pointer does not resolve."`
}

// defaultSbomSelector is IngestSbomConfig.SbomSelector's default since
// d24b7218 (the body, now that selectors see the event).
const defaultSbomSelector Pointer = "/payload"

// --- schema shaping (invopop hooks) -------------------------------------

// JSONSchemaExtend titles the array as pydantic does.
func (UpdateProjectConfig) JSONSchemaExtend(s *invopop.Schema) {
	s.Title = "UpdateProjectConfig"
}

// JSONSchemaExtend titles the rule as pydantic does.
func (UpdateProjectRule) JSONSchemaExtend(s *invopop.Schema) {
	s.Title = "UpdateProjectRule"
}

// JSONSchemaExtend marks the optional fields nullable.
func (CreateReleaseConfig) JSONSchemaExtend(s *invopop.Schema) {
	shapeObject(s, "CreateReleaseConfig", []string{"title_selector", "committish_expression"},
		"version_expression")
}

// JSONSchemaExtend marks the optional fields nullable.
func (AddDeploymentEventConfig) JSONSchemaExtend(s *invopop.Schema) {
	shapeObject(s, "AddDeploymentEventConfig",
		[]string{"environment_selector", "committish_expression", "status_selector"},
		"version_expression", "note_selector", "external_run_id_selector")
}

// JSONSchemaExtend marks the optional fields nullable; sbom_selector is
// optional (it has a default) but not nullable.
func (IngestSbomConfig) JSONSchemaExtend(s *invopop.Schema) {
	shapeObject(s, "IngestSbomConfig", []string{"version_expression"},
		"committish_expression", "title_selector")
}

// shapeObject sets an object schema's title and required list and turns
// each nullable property P into pydantic's {"anyOf":[P,{"type":"null"}],
// "default":null}.
func shapeObject(s *invopop.Schema, title string, required []string, nullable ...string) {
	s.Title = title
	s.Required = required
	for _, name := range nullable {
		prop, ok := s.Properties.Get(name)
		if !ok {
			panic(fmt.Sprintf("gatewayactions: %s has no property %q", title, name))
		}
		inner := *prop
		inner.Title, inner.Description = "", ""
		s.Properties.Set(name, &invopop.Schema{
			Title:       prop.Title,
			Description: prop.Description,
			AnyOf:       []*invopop.Schema{&inner, {Type: "null"}},
			Default:     json.RawMessage("null"),
		})
	}
}

// --- decoding -------------------------------------------------------------

// decodeExact decodes a JSON object into the given fields by exact key,
// ignoring every other key (pydantic's extra='ignore' without
// encoding/json's case-insensitive matching).
func decodeExact(data []byte, fields map[string]any) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	for key, dst := range fields {
		if v, ok := raw[key]; ok {
			if err := json.Unmarshal(v, dst); err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
		}
	}
	return nil
}

// UnmarshalJSON decodes by exact key.
func (r *UpdateProjectRule) UnmarshalJSON(data []byte) error {
	var out UpdateProjectRule
	if err := decodeExact(data, map[string]any{"path": &out.Path, "from": &out.From}); err != nil {
		return err
	}
	*r = out
	return nil
}

// UnmarshalJSON decodes by exact key.
func (c *CreateReleaseConfig) UnmarshalJSON(data []byte) error {
	var out CreateReleaseConfig
	if err := decodeExact(data, map[string]any{
		"title_selector":        &out.TitleSelector,
		"committish_expression": &out.CommittishExpression,
		"version_expression":    &out.VersionExpression,
	}); err != nil {
		return err
	}
	*c = out
	return nil
}

// UnmarshalJSON decodes by exact key.
func (c *AddDeploymentEventConfig) UnmarshalJSON(data []byte) error {
	var out AddDeploymentEventConfig
	if err := decodeExact(data, map[string]any{
		"environment_selector":     &out.EnvironmentSelector,
		"committish_expression":    &out.CommittishExpression,
		"status_selector":          &out.StatusSelector,
		"version_expression":       &out.VersionExpression,
		"note_selector":            &out.NoteSelector,
		"external_run_id_selector": &out.ExternalRunIDSelector,
	}); err != nil {
		return err
	}
	*c = out
	return nil
}

// UnmarshalJSON decodes by exact key and applies sbom_selector's default.
func (c *IngestSbomConfig) UnmarshalJSON(data []byte) error {
	out := IngestSbomConfig{SbomSelector: defaultSbomSelector}
	if err := decodeExact(data, map[string]any{
		"version_expression":    &out.VersionExpression,
		"sbom_selector":         &out.SbomSelector,
		"committish_expression": &out.CommittishExpression,
		"title_selector":        &out.TitleSelector,
	}); err != nil {
		return err
	}
	*c = out
	return nil
}

// --- validation (called by the SDK after the schema check) --------------

// Validate re-checks every pointer as python-jsonpointer parses it.
func (c *UpdateProjectConfig) Validate() error {
	var errs []error
	for i, r := range *c {
		errs = append(errs, fieldErr(fmt.Sprintf("%d.path", i), r.Path.Validate()),
			fieldErr(fmt.Sprintf("%d.from", i), r.From.Validate()))
	}
	return errors.Join(errs...)
}

// Validate re-checks the pointers.
func (c *CreateReleaseConfig) Validate() error {
	return fieldErr("title_selector", c.TitleSelector.Validate())
}

// Validate re-checks the pointers.
func (c *AddDeploymentEventConfig) Validate() error {
	return errors.Join(
		fieldErr("environment_selector", c.EnvironmentSelector.Validate()),
		fieldErr("status_selector", c.StatusSelector.Validate()),
		fieldErr("note_selector", optionalPointer(c.NoteSelector).Validate()),
		fieldErr("external_run_id_selector", optionalPointer(c.ExternalRunIDSelector).Validate()),
	)
}

// Validate re-checks the pointers.
func (c *IngestSbomConfig) Validate() error {
	return errors.Join(
		fieldErr("sbom_selector", c.SbomSelector.Validate()),
		fieldErr("title_selector", optionalPointer(c.TitleSelector).Validate()),
	)
}

func optionalPointer(p *Pointer) Pointer {
	if p == nil {
		return ""
	}
	return *p
}

func fieldErr(field string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", field, err)
}
