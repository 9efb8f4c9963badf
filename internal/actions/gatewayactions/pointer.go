package gatewayactions

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	invopop "github.com/invopop/jsonschema"
)

// Pointer is an RFC 6901 JSON Pointer, imbi-common's JsonPointer type: ""
// is the whole document, anything else starts with "/". In the generated
// config schema it is {"type":"string","format":"json-pointer"}, exactly
// what pydantic emits, and the SDK's compiled schema asserts the format.
type Pointer string

// JSONSchema is the invopop hook that gives Pointer pydantic's schema.
func (Pointer) JSONSchema() *invopop.Schema {
	return &invopop.Schema{Type: "string", Format: "json-pointer"}
}

// invalidEscape is python-jsonpointer's check ("~" not followed by 0 or
// 1, including a trailing "~"). The compiled schema's format check already
// rejects these in handler_config; Validate repeats it so Resolve never
// walks a malformed pointer, however the config was built.
var invalidEscape = regexp.MustCompile(`~[^01]|~$`)

// Validate parses the pointer as python-jsonpointer does.
func (p Pointer) Validate() error {
	s := string(p)
	if s != "" && !strings.HasPrefix(s, "/") {
		return fmt.Errorf("JSON Pointer %q: location must start with /", s)
	}
	if m := invalidEscape.FindString(s); m != "" {
		return fmt.Errorf("JSON Pointer %q: found invalid escape %s", s, m)
	}
	return nil
}

// tokens returns the unescaped reference tokens ("~1" is "/", "~0" is "~",
// in that order as RFC 6901 §4 requires).
func (p Pointer) tokens() []string {
	if p == "" {
		return nil
	}
	parts := strings.Split(string(p)[1:], "/")
	for i, t := range parts {
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
	}
	return parts
}

// PointerError says a selector did not resolve against the event. It names
// the pointer and the failing token, never the document (which may be
// large and is the sender's data).
type PointerError struct {
	Pointer Pointer
	Token   string
	Reason  string
}

func (e *PointerError) Error() string {
	return fmt.Sprintf("JSON Pointer %q did not resolve: %s", string(e.Pointer), e.Reason)
}

// ErrPointerNotFound matches every *PointerError with errors.Is.
var ErrPointerNotFound = errors.New("JSON Pointer did not resolve")

func (e *PointerError) Is(target error) bool { return target == ErrPointerNotFound }

// sequenceIndex is python-jsonpointer's index syntax: no sign, no leading
// zero.
var sequenceIndex = regexp.MustCompile(`^(0|[1-9][0-9]*)$`)

// Resolve walks doc (a decoded JSON value: map[string]any, []any, string,
// float64, json.Number, bool, nil) as python-jsonpointer's resolve does,
// including its quirk that a string is a sequence of characters. The
// end-of-array token "-" does not resolve (Python returns an EndOfList
// placeholder that no action can use).
func (p Pointer) Resolve(doc any) (any, error) {
	if err := p.Validate(); err != nil {
		return nil, &PointerError{Pointer: p, Reason: err.Error()}
	}
	cur := doc
	for _, tok := range p.tokens() {
		switch v := cur.(type) {
		case map[string]any:
			next, ok := v[tok]
			if !ok {
				return nil, &PointerError{Pointer: p, Token: tok, Reason: fmt.Sprintf("member %q not found", tok)}
			}
			cur = next
		case []any:
			i, err := p.index(tok, len(v))
			if err != nil {
				return nil, err
			}
			cur = v[i]
		case string:
			runes := []rune(v)
			i, err := p.index(tok, len(runes))
			if err != nil {
				return nil, err
			}
			cur = string(runes[i])
		default:
			return nil, &PointerError{Pointer: p, Token: tok,
				Reason: fmt.Sprintf("cannot index %s with %q", jsonKind(cur), tok)}
		}
	}
	return cur, nil
}

func (p Pointer) index(tok string, n int) (int, error) {
	if !sequenceIndex.MatchString(tok) {
		return 0, &PointerError{Pointer: p, Token: tok, Reason: fmt.Sprintf("%q is not a valid sequence index", tok)}
	}
	i, err := strconv.Atoi(tok)
	if err != nil || i >= n {
		return 0, &PointerError{Pointer: p, Token: tok, Reason: fmt.Sprintf("index %q is out of bounds", tok)}
	}
	return i, nil
}

// jsonKind names a decoded JSON value's type for error messages.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64, json.Number, int64, int:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	default:
		return fmt.Sprintf("a %T", v)
	}
}
