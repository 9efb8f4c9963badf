package plugins

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file is the one shared decoder behind every model's UnmarshalJSON.
// It mirrors pydantic v2's lax mode (plugins-spec §2): unknown keys are
// ignored, a missing required field is "Field required", null is only
// accepted by nullable fields, ints accept "1", true and 1.0 but not 1.5,
// strings accept only strings, datetimes accept ISO-8601 and unix numbers.
// Errors are *ValidationError whose Field is the pydantic loc joined with
// dots (e.g. "options.0.name").

// presence says what a missing or null field means.
type presence int

const (
	// required: missing → "Field required"; null → type error.
	required presence = iota
	// withDefault: missing → the value already in *dst (the default);
	// null → type error (pydantic applies defaults to absent keys only).
	withDefault
	// nullable: missing or null → the zero value of T (nil for pointers,
	// slices and maps), i.e. JSON null.
	nullable
	// nullMeansDefault: missing or null → the default. Not pydantic: used
	// only where this project's wire contract allows null for a
	// defaulted container (PluginContext in action-envelope.v1.json).
	nullMeansDefault
)

// parser turns one JSON value into T; its *ValidationError carries a loc
// relative to the value (empty for the value itself).
type parser[T any] func(raw json.RawMessage) (T, error)

// objectDecoder holds one JSON object's fields while a model decodes it.
type objectDecoder struct {
	model  string
	fields map[string]json.RawMessage
	err    error
}

// newObjectDecoder splits data into fields; data must be a JSON object.
func newObjectDecoder(model string, data []byte) (*objectDecoder, error) {
	fields, err := parseObject(data)
	if err != nil {
		return nil, &ValidationError{Model: model,
			Message: "Input should be a valid dictionary or instance of " + model}
	}
	return &objectDecoder{model: model, fields: fields}, nil
}

// unknown returns the fields of the object not in declared (LogEntry
// keeps them).
func (d *objectDecoder) unknown(declared ...string) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	for k, v := range d.fields {
		if !slices.Contains(declared, k) {
			out[k] = v
		}
	}
	return out
}

// field decodes one field into dst with parse; the first error is kept
// and later fields are skipped (pydantic reports them all; one is enough
// to name the problem).
func field[T any](d *objectDecoder, name string, dst *T, p presence, parse parser[T]) {
	if d.err != nil {
		return
	}
	raw, ok := d.fields[name]
	switch {
	case !ok && p == required:
		d.err = &ValidationError{Model: d.model, Field: name, Message: "Field required"}
		return
	case !ok:
		if p == nullable {
			var zero T
			*dst = zero
		} else {
			emptyIfNil(dst)
		}
		return
	case isNull(raw) && p == nullable:
		var zero T
		*dst = zero
		return
	case isNull(raw) && p == nullMeansDefault:
		emptyIfNil(dst)
		return
	}
	v, err := parse(raw)
	if err != nil {
		d.err = prefixLoc(d.model, name, err)
		return
	}
	*dst = v
}

// prefixLoc re-homes a nested error under the field name.
func prefixLoc(model, name string, err error) error {
	if ve, ok := err.(*ValidationError); ok {
		return &ValidationError{Model: model, Field: joinLoc(name, ve.Field), Message: ve.Message}
	}
	return &ValidationError{Model: model, Field: name, Message: err.Error()}
}

func joinLoc(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "." + b
}

// emptyIfNil makes a defaulted list or dict field [] or {} as pydantic's
// fresh per-instance default, so decoded values compare equal whether the
// key was absent or sent empty.
func emptyIfNil[T any](dst *T) {
	v := reflect.ValueOf(dst).Elem()
	switch {
	case v.Kind() == reflect.Slice && v.IsNil():
		v.Set(reflect.MakeSlice(v.Type(), 0, 0))
	case v.Kind() == reflect.Map && v.IsNil():
		v.Set(reflect.MakeMap(v.Type()))
	}
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

func typeError(msg string) error { return &ValidationError{Message: msg} }

func parseObject(raw json.RawMessage) (map[string]json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, typeError("Input should be a valid dictionary")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, typeError("Input should be a valid dictionary")
	}
	return m, nil
}

func parseString(raw json.RawMessage) (string, error) {
	var s string
	if len(raw) == 0 || bytes.TrimSpace(raw)[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", typeError("Input should be a valid string")
	}
	return s, nil
}

// parseBool accepts what pydantic's lax bool accepts.
func parseBool(raw json.RawMessage) (bool, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err == nil {
		switch b := v.(type) {
		case bool:
			return b, nil
		case float64:
			if b == 0 || b == 1 {
				return b == 1, nil
			}
		case string:
			switch strings.ToLower(strings.TrimSpace(b)) {
			case "1", "on", "t", "true", "y", "yes":
				return true, nil
			case "0", "off", "f", "false", "n", "no":
				return false, nil
			}
		}
	}
	return false, typeError("Input should be a valid boolean")
}

// parseInt is pydantic's lax int: 1, 1.0, "1", true → 1; 1.5 is rejected.
func parseInt(raw json.RawMessage) (int, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err == nil {
		switch n := v.(type) {
		case bool:
			if n {
				return 1, nil
			}
			return 0, nil
		case json.Number:
			return numberToInt(string(n))
		case string:
			return numberToInt(strings.TrimSpace(n))
		}
	}
	return 0, typeError("Input should be a valid integer")
}

func numberToInt(s string) (int, error) {
	if i, err := strconv.Atoi(s); err == nil {
		return i, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, typeError("Input should be a valid integer, unable to parse string as an integer")
	}
	if f != math.Trunc(f) {
		return 0, typeError("Input should be a valid integer, got a number with a fractional part")
	}
	if f > math.MaxInt64 || f < math.MinInt64 {
		return 0, typeError("Input should be a valid integer")
	}
	return int(f), nil
}

// datetimeLayouts are the ISO-8601 shapes pydantic accepts, most common
// first. A naive value (no offset) is read as UTC: Go's time.Time has no
// "naive" state (documented in docs/conformance.md).
var datetimeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04",
	"2006-01-02",
}

// parseTime accepts ISO-8601 strings and unix seconds (milliseconds when
// the number is larger than 2e10, as pydantic does) within Python's
// datetime range, years 1 to 9999.
func parseTime(raw json.RawMessage) (time.Time, error) {
	t, err := parseTimeAnyYear(raw)
	if err == nil && (t.Year() < 1 || t.Year() > 9999) {
		return time.Time{}, typeError("Input should be a valid datetime, dates after 9999 or before 0001 are not supported")
	}
	return t, err
}

func parseTimeAnyYear(raw json.RawMessage) (time.Time, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err == nil {
		switch t := v.(type) {
		case string:
			s := strings.TrimSpace(t)
			for _, layout := range datetimeLayouts {
				if ts, err := time.Parse(layout, s); err == nil {
					return ts, nil
				}
			}
			if f, err := strconv.ParseFloat(s, 64); err == nil {
				return unixTime(f), nil
			}
		case float64:
			return unixTime(t), nil
		}
	}
	return time.Time{}, typeError("Input should be a valid datetime")
}

func unixTime(f float64) time.Time {
	if math.Abs(f) > 2e10 {
		f /= 1000
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(math.Round(frac*1e6))*1e3).UTC()
}

// parseAny accepts any JSON value (map values of dict[str, Any]).
func parseAny(raw json.RawMessage) (any, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, typeError("Input should be valid JSON")
	}
	return v, nil
}

// parseEnum accepts exactly the listed strings (pydantic Literal).
func parseEnum[E ~string](allowed ...E) parser[E] {
	return func(raw json.RawMessage) (E, error) {
		s, err := parseString(raw)
		if err == nil && slices.Contains(allowed, E(s)) {
			return E(s), nil
		}
		return "", typeError("Input should be " + enumList(allowed))
	}
}

// enumList renders allowed values as pydantic does: 'a', 'b' or 'c'.
func enumList[E ~string](allowed []E) string {
	quoted := make([]string, len(allowed))
	for i, a := range allowed {
		quoted[i] = "'" + string(a) + "'"
	}
	if len(quoted) == 1 {
		return quoted[0]
	}
	return strings.Join(quoted[:len(quoted)-1], ", ") + " or " + quoted[len(quoted)-1]
}

// parseList decodes a JSON array element by element; errors carry the index.
func parseList[T any](elem parser[T]) parser[[]T] {
	return func(raw json.RawMessage) ([]T, error) {
		var items []json.RawMessage
		trimmed := bytes.TrimSpace(raw)
		if len(trimmed) == 0 || trimmed[0] != '[' || json.Unmarshal(trimmed, &items) != nil {
			return nil, typeError("Input should be a valid list")
		}
		out := make([]T, 0, len(items))
		for i, it := range items {
			v, err := elem(it)
			if err != nil {
				return nil, prefixLoc("", strconv.Itoa(i), err)
			}
			out = append(out, v)
		}
		return out, nil
	}
}

// parseMap decodes a JSON object into map[string]T; errors carry the key.
func parseMap[T any](elem parser[T]) parser[map[string]T] {
	return func(raw json.RawMessage) (map[string]T, error) {
		fields, err := parseObject(raw)
		if err != nil {
			return nil, err
		}
		out := make(map[string]T, len(fields))
		for k, it := range fields {
			v, err := elem(it)
			if err != nil {
				return nil, prefixLoc("", k, err)
			}
			out[k] = v
		}
		return out, nil
	}
}

// ptr makes a parser for a nullable field's pointer type.
func ptr[T any](p parser[T]) parser[*T] {
	return func(raw json.RawMessage) (*T, error) {
		v, err := p(raw)
		if err != nil {
			return nil, err
		}
		return &v, nil
	}
}

// model decodes a nested model with its own UnmarshalJSON.
func model[T any, PT interface {
	*T
	json.Unmarshaler
}]() parser[T] {
	return func(raw json.RawMessage) (T, error) {
		var v T
		if err := PT(&v).UnmarshalJSON(raw); err != nil {
			if ve, ok := err.(*ValidationError); ok {
				return v, &ValidationError{Field: ve.Field, Message: ve.Message}
			}
			return v, err
		}
		return v, nil
	}
}

// Parsers shared by many models.
var (
	strList = parseList(parseString)
	strMap  = parseMap(parseString)
	anyMap  = parseMap(parseAny)
	intList = parseList(parseInt)
	intMap  = parseMap(parseInt)
	optStr  = ptr(parseString)
	optInt  = ptr(parseInt)
	optTime = ptr(parseTime)
)

// optionDefault is PluginOption.default: pydantic's smart union of
// str | int | bool | None picks the exact JSON type; floats, lists and
// objects are rejected.
func optionDefault(raw json.RawMessage) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err == nil {
		switch t := v.(type) {
		case string, bool:
			return t, nil
		case json.Number:
			if i, err := strconv.ParseInt(string(t), 10, 64); err == nil {
				return i, nil
			}
			if f, err := t.Float64(); err == nil && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
				return int64(f), nil
			}
		}
	}
	return nil, typeError("Input should be a valid string, integer or boolean")
}

// store writes v into dst when every field decoded, so a failed decode
// leaves dst untouched.
func store[T any](d *objectDecoder, dst *T, v T) error {
	if d.err != nil {
		return d.err
	}
	*dst = v
	return nil
}
