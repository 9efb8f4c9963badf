package plugins

import (
	"bytes"
	"encoding/json"
	"reflect"
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
	t := rv.Type()
	fields := make([]reflect.StructField, t.NumField())
	for i := range fields {
		fields[i] = t.Field(i)
	}
	out := reflect.New(reflect.StructOf(fields)).Elem()
	for i := range fields {
		f := rv.Field(i)
		if isContainer(f) && f.IsNil() && fields[i].Tag.Get("imbi") != "nullable" {
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

func isContainer(f reflect.Value) bool {
	k := f.Kind()
	return k == reflect.Slice || k == reflect.Map
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
