package wire

import (
	"fmt"
	"regexp"
	"strings"
)

// handlerPattern is the gateway's handler regex (plugins-spec §6.2).
var handlerPattern = regexp.MustCompile(`^[a-z][a-z0-9-]*#[a-z][a-z0-9_]*$`)

// Handler is a parsed rule handler, "<plugin_slug>#<action_name>".
type Handler struct {
	Plugin string
	Action string
}

// String renders the canonical "<plugin_slug>#<action_name>" form.
func (h Handler) String() string { return h.Plugin + "#" + h.Action }

// InvalidHandlerError reports a handler string of the wrong shape.
type InvalidHandlerError struct{ Value string }

func (e *InvalidHandlerError) Error() string {
	return fmt.Sprintf("handler '%s' must be '<plugin_slug>#<action_name>'", e.Value)
}

// ParseHandler parses and validates a rule handler. The legacy
// "<slug>:<action>" form (imbi-common before 2.5.0) is accepted and
// normalised to '#'. It is the one place handler strings are checked.
func ParseHandler(s string) (Handler, error) {
	canonical := s
	if !strings.Contains(s, "#") {
		// Legacy separator: exactly one ':' and nothing else changes.
		if strings.Count(s, ":") == 1 {
			canonical = strings.Replace(s, ":", "#", 1)
		}
	}
	if !handlerPattern.MatchString(canonical) {
		return Handler{}, &InvalidHandlerError{Value: s}
	}
	slug, action, _ := strings.Cut(canonical, "#")
	return Handler{Plugin: slug, Action: action}, nil
}
