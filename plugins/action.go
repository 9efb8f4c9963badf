package plugins

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"runtime"
	"sync"
	"time"

	invopop "github.com/invopop/jsonschema"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// actionNamePattern is ActionDescriptor.name's constraint (plugins-spec §4.15).
var actionNamePattern = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// ActionFunc is the code of one webhook action; C is its config type. It is
// Python's WebhookActionCallable: it gets the five named inputs and returns
// only an error. Honour ctx: it carries the action's deadline.
type ActionFunc[C any] func(ctx context.Context, in ActionInput[C]) error

// ActionInput is what an action receives (plugins-spec §6.4, 06-05 shape).
type ActionInput[C any] struct {
	Context            PluginContext
	Credentials        Credentials
	ExternalIdentifier string
	// Config is the rule's handler_config, validated against the schema
	// generated from C and decoded into C.
	Config C
	Event  Event
}

// Invocation is the untyped form of ActionInput that a host passes to
// ActionDescriptor.Run; Config must come from the same descriptor's
// DecodeConfig.
type Invocation struct {
	Context            PluginContext
	Credentials        Credentials
	ExternalIdentifier string
	Config             any
	Event              Event
}

// ActionDescriptor is one entry of a webhook plugin's static action
// catalogue. Build it with NewAction; the zero value is not usable.
type ActionDescriptor struct {
	// Name is the key after '#' in a rule handler: ^[a-z][a-z0-9_]*$.
	Name string
	// Label is the operator-facing title (non-empty).
	Label string
	// Description is optional help text (nil = none, JSON null).
	Description *string
	// Timeout is the action's own deadline; 0 means the host default
	// (IMBI_PLUGIN_TIMEOUT_SECONDS, 10 s).
	Timeout time.Duration

	impl actionImpl
}

// actionImpl hides the config type parameter behind an interface so
// descriptors of different config types share one slice.
type actionImpl interface {
	schemaJSON() json.RawMessage
	decode(name string, raw json.RawMessage) (any, error)
	run(ctx context.Context, inv Invocation) error
	funcName() string
	configTypeName() string
}

// ActionOption customises a descriptor built by NewAction.
type ActionOption func(*ActionDescriptor)

// WithDescription sets the help text.
func WithDescription(s string) ActionOption {
	return func(d *ActionDescriptor) { d.Description = &s }
}

// WithTimeout sets the action's own deadline.
func WithTimeout(t time.Duration) ActionOption {
	return func(d *ActionDescriptor) { d.Timeout = t }
}

// NewAction builds and validates a descriptor. The JSON Schema of C is
// generated here (invopop/jsonschema) and compiled once (santhosh-tekuri,
// formats asserted), so a bad config type fails at registry load, not at
// the first message — as Python resolves import strings at construction.
func NewAction[C any](name, label string, fn ActionFunc[C], opts ...ActionOption) (ActionDescriptor, error) {
	d := ActionDescriptor{Name: name, Label: label}
	for _, o := range opts {
		o(&d)
	}
	if !actionNamePattern.MatchString(name) {
		return ActionDescriptor{}, &ValidationError{Model: "ActionDescriptor", Field: "name",
			Message: fmt.Sprintf("String should match pattern '^[a-z][a-z0-9_]*$' (got %q)", name)}
	}
	if label == "" {
		return ActionDescriptor{}, &ValidationError{Model: "ActionDescriptor", Field: "label",
			Message: "String should have at least 1 character"}
	}
	if d.Timeout < 0 {
		return ActionDescriptor{}, &ValidationError{Model: "ActionDescriptor", Field: "timeout",
			Message: "must not be negative"}
	}
	if fn == nil {
		return ActionDescriptor{}, &ValidationError{Model: "ActionDescriptor", Field: "callable",
			Message: "callable must not be nil"}
	}
	impl, err := newTypedAction(fn)
	if err != nil {
		return ActionDescriptor{}, &ValidationError{Model: "ActionDescriptor", Field: "config_model",
			Message: err.Error()}
	}
	d.impl = impl
	return d, nil
}

// MustAction is NewAction that panics on error, for static catalogues.
func MustAction[C any](name, label string, fn ActionFunc[C], opts ...ActionOption) ActionDescriptor {
	d, err := NewAction(name, label, fn, opts...)
	if err != nil {
		panic(err)
	}
	return d
}

// Valid reports whether the descriptor was built by NewAction.
func (d ActionDescriptor) Valid() bool { return d.impl != nil }

// ConfigSchema is the JSON Schema of the action's config type; the rule
// editor renders it and the worker validates handler_config with it.
func (d ActionDescriptor) ConfigSchema() json.RawMessage {
	if d.impl == nil {
		return nil
	}
	return d.impl.schemaJSON()
}

// DecodeConfig validates raw handler_config against the compiled schema and
// decodes it into the config type. A JSON string holding a JSON document
// (as stored on a WebhookRule node) is unwrapped first. Errors are
// *ConfigError.
func (d ActionDescriptor) DecodeConfig(raw json.RawMessage) (any, error) {
	if d.impl == nil {
		return nil, &ConfigError{Action: d.Name, Err: errors.New("descriptor not built with NewAction")}
	}
	return d.impl.decode(d.Name, raw)
}

// Run invokes the action. inv.Config must come from DecodeConfig.
func (d ActionDescriptor) Run(ctx context.Context, inv Invocation) error {
	if d.impl == nil {
		return Permanent(errors.New("descriptor not built with NewAction"))
	}
	return d.impl.run(ctx, inv)
}

// CallableName is the Go name of the action function (Python's dotted
// import-string rendering of "callable").
func (d ActionDescriptor) CallableName() string {
	if d.impl == nil {
		return ""
	}
	return d.impl.funcName()
}

// ConfigModelName is the Go name of the config type (Python's
// "config_model").
func (d ActionDescriptor) ConfigModelName() string {
	if d.impl == nil {
		return ""
	}
	return d.impl.configTypeName()
}

// MarshalJSON renders the descriptor as Python's model_dump_json does, plus
// the generated config schema and timeout.
func (d ActionDescriptor) MarshalJSON() ([]byte, error) {
	var timeout *float64
	if d.Timeout > 0 {
		s := d.Timeout.Seconds()
		timeout = &s
	}
	return json.Marshal(struct {
		Name           string          `json:"name"`
		Label          string          `json:"label"`
		Description    *string         `json:"description"`
		Callable       string          `json:"callable"`
		ConfigModel    string          `json:"config_model"`
		TimeoutSeconds *float64        `json:"timeout_seconds"`
		ConfigSchema   json.RawMessage `json:"config_schema"`
	}{d.Name, d.Label, d.Description, d.CallableName(), d.ConfigModelName(), timeout, d.ConfigSchema()})
}

type typedAction[C any] struct {
	fn       ActionFunc[C]
	schema   *jsonschema.Schema
	raw      json.RawMessage
	fnName   string
	typeName string
	// valid remembers configs that passed schema validation: a rule's
	// handler_config arrives byte-identical on every event it matches, and
	// the generic validator (parse into a generic document, walk the
	// schema) was the largest part of dispatching a message. Only the
	// verdict is cached, never the decoded value: every call still
	// decodes into a fresh C and runs its Validate method.
	valid validConfigs
}

// Bounds of the validated-config cache: enough for every rule of a
// large installation; configs longer than maxCachedConfig are validated
// every time rather than pinned in memory.
const (
	maxCachedConfigs = 1024
	maxCachedConfig  = 4096
)

// validConfigs is a bounded set of raw configs that passed validation.
// Only passing configs are stored, so an invalid config is validated —
// and rejected, with its error — every time. When full, it is emptied:
// the working set is the installation's rules, so a refill is rare, and
// nothing an attacker sends can grow it past the bound.
type validConfigs struct {
	mu  sync.RWMutex
	set map[string]struct{}
}

func (v *validConfigs) has(raw []byte) bool {
	v.mu.RLock()
	_, ok := v.set[string(raw)] // no allocation: the compiler converts in place
	v.mu.RUnlock()
	return ok
}

func (v *validConfigs) add(raw []byte) {
	if len(raw) > maxCachedConfig {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.set == nil || len(v.set) >= maxCachedConfigs {
		v.set = make(map[string]struct{}, 64)
	}
	v.set[string(raw)] = struct{}{}
}

func (v *validConfigs) len() int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return len(v.set)
}

func newTypedAction[C any](fn ActionFunc[C]) (*typedAction[C], error) {
	raw, err := generateSchema[C]()
	if err != nil {
		return nil, err
	}
	compiled, err := compileSchema("https://imbi-worker.invalid/action-config.json", raw)
	if err != nil {
		return nil, err
	}
	var zero C
	t := reflect.TypeOf(&zero).Elem()
	name := t.String()
	if t.PkgPath() != "" {
		name = t.PkgPath() + "." + t.Name()
	}
	fnName := ""
	if f := runtime.FuncForPC(reflect.ValueOf(fn).Pointer()); f != nil {
		fnName = f.Name()
	}
	return &typedAction[C]{fn: fn, schema: compiled, raw: raw, fnName: fnName, typeName: name}, nil
}

func (a *typedAction[C]) schemaJSON() json.RawMessage { return a.raw }
func (a *typedAction[C]) funcName() string            { return a.fnName }
func (a *typedAction[C]) configTypeName() string      { return a.typeName }

func (a *typedAction[C]) decode(name string, raw json.RawMessage) (any, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		raw = []byte("{}")
		var probe C
		if reflect.TypeOf(&probe).Elem().Kind() == reflect.Slice {
			raw = []byte("[]")
		}
	}
	if raw[0] == '"' {
		var inner string
		if err := json.Unmarshal(raw, &inner); err != nil {
			return nil, &ConfigError{Action: name, Err: err}
		}
		raw = []byte(inner)
	}
	if !a.valid.has(raw) {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			return nil, &ConfigError{Action: name, Err: fmt.Errorf("not valid JSON: %w", err)}
		}
		if err := a.schema.Validate(doc); err != nil {
			return nil, &ConfigError{Action: name, Err: err}
		}
		a.valid.add(raw)
	}
	var c C
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, &ConfigError{Action: name, Err: err}
	}
	if v, ok := any(&c).(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			return nil, &ConfigError{Action: name, Err: err}
		}
	}
	return c, nil
}

func (a *typedAction[C]) run(ctx context.Context, inv Invocation) error {
	c, ok := inv.Config.(C)
	if !ok {
		return Permanent(fmt.Errorf("config is %T, want %s", inv.Config, a.typeName))
	}
	return a.fn(ctx, ActionInput[C]{
		Context:            inv.Context,
		Credentials:        inv.Credentials,
		ExternalIdentifier: inv.ExternalIdentifier,
		Config:             c,
		Event:              inv.Event,
	})
}

// generateSchema returns the JSON Schema of C as the worker uses it. Unknown
// properties are allowed, as pydantic's default extra='ignore'; fields
// without `omitempty` are required, as pydantic fields without a default.
func generateSchema[C any]() (json.RawMessage, error) {
	r := &invopop.Reflector{
		AllowAdditionalProperties: true,
		DoNotReference:            true,
		ExpandedStruct:            true,
	}
	var zero C
	s := r.ReflectFromType(reflect.TypeOf(&zero).Elem())
	s.Version = "https://json-schema.org/draft/2020-12/schema"
	s.ID = ""
	return json.Marshal(s)
}

// compileSchema compiles a JSON Schema with format assertions on.
func compileSchema(url string, raw []byte) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("schema is not JSON: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(url, doc); err != nil {
		return nil, err
	}
	return c.Compile(url)
}
