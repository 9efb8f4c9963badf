package creds

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The credential blob is a JSON object that Python wrote with json.dumps and
// reads back into a dict. Three Python behaviours matter to callers and are
// reproduced here: dict key order is kept (patch returns keys in map order),
// truthiness decides "missing" (§10.5), and str(value) is the string a
// plugin receives (True, 1.5, "{'x': 1}").

// object is a JSON object that keeps its key order, like a Python dict.
type object struct {
	keys   []string
	values map[string]any
}

func newObject() *object { return &object{values: map[string]any{}} }

func (o *object) get(k string) (any, bool) {
	v, ok := o.values[k]
	return v, ok
}

// set replaces an existing key in place or appends a new one (dict semantics).
func (o *object) set(k string, v any) {
	if _, ok := o.values[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.values[k] = v
}

func (o *object) delete(k string) {
	if _, ok := o.values[k]; !ok {
		return
	}
	delete(o.values, k)
	for i, key := range o.keys {
		if key == k {
			o.keys = append(o.keys[:i:i], o.keys[i+1:]...)
			break
		}
	}
}

// errNotObject: the JSON is valid but its top level is not an object.
var errNotObject = errors.New("JSON value is not an object")

// decodeJSON parses one JSON document. Objects become *object (duplicate
// keys: the last value wins at the first key's position, as Python's dict
// does), numbers stay json.Number so ints and floats stringify the way
// Python's do.
func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("invalid JSON: trailing data")
	}
	return v, nil
}

// decodeObject parses a JSON document that must be an object.
func decodeObject(data []byte) (*object, error) {
	v, err := decodeJSON(data)
	if err != nil {
		return nil, err
	}
	o, ok := v.(*object)
	if !ok {
		return nil, errNotObject
	}
	return o, nil
}

func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			o := newObject()
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, ok := kt.(string)
				if !ok {
					return nil, errors.New("invalid JSON: object key is not a string")
				}
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				o.set(k, v)
			}
			if _, err := dec.Token(); err != nil { // '}'
				return nil, err
			}
			return o, nil
		case '[':
			list := []any{}
			for dec.More() {
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				list = append(list, v)
			}
			if _, err := dec.Token(); err != nil { // ']'
				return nil, err
			}
			return list, nil
		default:
			return nil, fmt.Errorf("invalid JSON: unexpected %q", t)
		}
	default:
		return t, nil // string, json.Number, bool, nil
	}
}

// encodeJSON serialises like Python's json.dumps with default arguments:
// ", " and ": " separators, non-ASCII escaped as \uXXXX, keys in order.
// Byte-identical output is not needed for interop (any JSON object reads
// back), but it keeps Go-written blobs indistinguishable from Python's.
func encodeJSON(v any) []byte {
	var b strings.Builder
	writeJSON(&b, v)
	return []byte(b.String())
}

func writeJSON(b *strings.Builder, v any) { writePython(b, v, &jsonDumps) }

// pySyntax is how one of Python's printers spells what json.loads
// produces; lists and dicts are written alike by both (", " and ": ").
type pySyntax struct {
	null, yes, no string
	number        func(string) string
	str           func(*strings.Builder, string)
	other         func(*strings.Builder, any) // a type json.loads does not produce
}

// jsonDumps is json.dumps with default arguments; pyRepr is repr.
var (
	jsonDumps = pySyntax{null: "null", yes: "true", no: "false",
		number: func(n string) string { return n },
		str:    writeJSONString,
		other:  func(_ *strings.Builder, v any) { panic(fmt.Sprintf("creds: cannot encode %T", v)) }}
	pyRepr = pySyntax{null: "None", yes: "True", no: "False",
		number: pyNumber,
		str:    func(b *strings.Builder, s string) { b.WriteString(pyStrRepr(s)) },
		other:  func(b *strings.Builder, v any) { fmt.Fprint(b, v) }}
)

// writePython writes v as syn spells it.
func writePython(b *strings.Builder, v any, syn *pySyntax) {
	switch t := v.(type) {
	case nil:
		b.WriteString(syn.null)
	case bool:
		if t {
			b.WriteString(syn.yes)
		} else {
			b.WriteString(syn.no)
		}
	case json.Number:
		b.WriteString(syn.number(t.String()))
	case string:
		syn.str(b, t)
	case []any:
		b.WriteByte('[')
		for i, e := range t {
			if i > 0 {
				b.WriteString(", ")
			}
			writePython(b, e, syn)
		}
		b.WriteByte(']')
	case *object:
		b.WriteByte('{')
		for i, k := range t.keys {
			if i > 0 {
				b.WriteString(", ")
			}
			syn.str(b, k)
			b.WriteString(": ")
			writePython(b, t.values[k], syn)
		}
		b.WriteByte('}')
	default:
		syn.other(b, v)
	}
}

// writeJSONString is json.dumps(ensure_ascii=True) for one string.
func writeJSONString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			switch {
			case r < 0x20 || (r >= 0x7f && r <= 0xffff):
				fmt.Fprintf(b, `\u%04x`, r)
			case r > 0xffff:
				r1, r2 := utf16Surrogates(r)
				fmt.Fprintf(b, `\u%04x\u%04x`, r1, r2)
			default:
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
}

func utf16Surrogates(r rune) (rune, rune) {
	r -= 0x10000
	return 0xd800 + (r>>10)&0x3ff, 0xdc00 + r&0x3ff
}

// truthy is Python's bool(value) for a decoded JSON value.
func truthy(v any) bool {
	switch t := v.(type) {
	case nil:
		return false
	case bool:
		return t
	case string:
		return t != ""
	case json.Number:
		f, err := strconv.ParseFloat(t.String(), 64)
		if err != nil { // out of range: |x| is huge, so not zero
			return true
		}
		return f != 0
	case []any:
		return len(t) > 0
	case *object:
		return len(t.keys) > 0
	default:
		return true
	}
}

// pyStr is Python's str(value): strings unchanged, everything else repr.
func pyStr(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	var b strings.Builder
	writeRepr(&b, v)
	return b.String()
}

// writeRepr is Python's repr for the values json.loads produces.
func writeRepr(b *strings.Builder, v any) { writePython(b, v, &pyRepr) }

// pyNumber renders a JSON number literal as Python does after json.loads:
// integer literals become int (arbitrary precision), the rest float.
func pyNumber(lit string) string {
	if !strings.ContainsAny(lit, ".eE") {
		digits := strings.TrimPrefix(lit, "-")
		if strings.Trim(digits, "0") == "" {
			return "0" // -0 is int 0
		}
		return lit
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil && !math.IsInf(f, 0) {
		return lit
	}
	return pyFloatRepr(f)
}

// pyFloatRepr is Python's float repr: the shortest digits that round-trip,
// fixed notation for exponents in [-4, 16), scientific otherwise, always
// with a ".0" or a fraction in fixed notation.
func pyFloatRepr(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	sci := strconv.FormatFloat(f, 'e', -1, 64) // e.g. -1.2345e+06
	mant, expPart, _ := strings.Cut(sci, "e")
	exp, _ := strconv.Atoi(expPart)
	neg := strings.HasPrefix(mant, "-")
	digits := strings.ReplaceAll(strings.TrimPrefix(mant, "-"), ".", "")
	sign := ""
	if neg {
		sign = "-"
	}
	if exp < -4 || exp >= 16 {
		m := digits[:1]
		if len(digits) > 1 {
			m += "." + digits[1:]
		}
		es := "+"
		if exp < 0 {
			es = "-"
			exp = -exp
		}
		return fmt.Sprintf("%s%se%s%02d", sign, m, es, exp)
	}
	var out string
	switch {
	case exp < 0:
		out = "0." + strings.Repeat("0", -exp-1) + digits
	case exp+1 >= len(digits):
		out = digits + strings.Repeat("0", exp+1-len(digits)) + ".0"
	default:
		out = digits[:exp+1] + "." + digits[exp+1:]
	}
	return sign + out
}

// pyStrRepr is Python's repr(str): single quotes unless the text holds a
// single quote and no double quote; printable characters (ASCII or not)
// kept, others escaped as \xNN, \uNNNN or \UNNNNNNNN.
func pyStrRepr(s string) string {
	quote := byte('\'')
	if strings.ContainsRune(s, '\'') && !strings.ContainsRune(s, '"') {
		quote = '"'
	}
	var b strings.Builder
	b.WriteByte(quote)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == rune(quote) || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\ufffd`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r < 0x7f || unicode.IsPrint(r):
			b.WriteRune(r)
		case r <= 0xff:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
	}
	b.WriteByte(quote)
	return b.String()
}
