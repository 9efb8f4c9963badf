package httprequest

import (
	"fmt"
	"strconv"
	"strings"
)

// resolvePointer evaluates an RFC 6901 JSON Pointer against a decoded JSON
// document (maps, slices, scalars). ok is false when a token names nothing;
// err is a malformed pointer.
func resolvePointer(doc any, ptr string) (v any, ok bool, err error) {
	if ptr == "" {
		return doc, true, nil
	}
	if !strings.HasPrefix(ptr, "/") {
		return nil, false, fmt.Errorf("JSON Pointer %q must start with '/'", ptr)
	}
	cur := doc
	for _, tok := range strings.Split(ptr[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch node := cur.(type) {
		case map[string]any:
			next, found := node[tok]
			if !found {
				return nil, false, nil
			}
			cur = next
		case []any:
			i, convErr := strconv.Atoi(tok)
			if convErr != nil || i < 0 || i >= len(node) || (len(tok) > 1 && tok[0] == '0') {
				return nil, false, nil
			}
			cur = node[i]
		default:
			return nil, false, nil
		}
	}
	return cur, true, nil
}
