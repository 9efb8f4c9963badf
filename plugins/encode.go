package plugins

import (
	"bytes"
	"encoding/json"
	"reflect"
	"sync"
)

// encodeModel is the one shared encoder behind every model's MarshalJSON:
// pydantic's model_dump(mode='json') emits every field in declaration
// order, and a list or dict field with a default is [] or {}, never null.
// Go leaves unset slices and maps nil, so nil ones are replaced by empty
// ones unless the field is tagged `imbi:"nullable"` (Python's
// `list[str] | None = None`). Pointer fields stay null.
//
// v must be a struct whose fields are all exported. The copy is made into
// a method-less struct type with the same fields (reflect.StructOf) so
// json.Marshal does not recurse into the model's own MarshalJSON.
func encodeModel(v any) ([]byte, error) {
	rv := reflect.ValueOf(v)
	plan := planFor(rv.Type())
	out := reflect.New(plan.copyType).Elem()
	for i := range plan.defaults {
		f := rv.Field(i)
		if plan.defaults[i] && f.IsNil() {
			switch f.Kind() {
			case reflect.Slice:
				f = reflect.MakeSlice(f.Type(), 0, 0)
			case reflect.Map:
				f = reflect.MakeMap(f.Type())
			}
		}
		out.Field(i).Set(f)
	}
	return marshalNoEscape(out.Interface())
}

// encodePlan is what encodeModel derives from a model type alone.
type encodePlan struct {
	copyType reflect.Type
	// defaults[i]: field i is a list or dict that encodes as empty when nil.
	defaults []bool
}

// encodePlans memoises planFor. Building the StructOf type on every call
// was ≈ 60 % of encoding a PluginContext; a plan depends only on the
// type, so it is computed once per model type (a fixed, small set — the
// package's own models) and never changes, as encoding/json caches its
// encoders.
var encodePlans sync.Map // reflect.Type -> *encodePlan

func planFor(t reflect.Type) *encodePlan {
	if p, ok := encodePlans.Load(t); ok {
		return p.(*encodePlan)
	}
	fields := make([]reflect.StructField, t.NumField())
	defaults := make([]bool, len(fields))
	for i := range fields {
		fields[i] = t.Field(i)
		k := fields[i].Type.Kind()
		defaults[i] = (k == reflect.Slice || k == reflect.Map) && fields[i].Tag.Get("imbi") != "nullable"
	}
	p, _ := encodePlans.LoadOrStore(t, &encodePlan{copyType: reflect.StructOf(fields), defaults: defaults})
	return p.(*encodePlan)
}

// marshalNoEscape is json.Marshal without HTML escaping, so '<', '>' and
// '&' read as Python writes them.
func marshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}
