package dlq

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/aweber-imbi/imbi-worker/internal/redact"
)

// maxShownBody bounds a body that is not JSON when it is shown.
const maxShownBody = 4 << 10

// View is a letter as `dlq show` prints it: safe to put on a terminal, in
// a ticket or a log. Everything is redacted by internal/redact, the same
// code that redacted the stored letter: sensitive header values (NATS
// headers and binary-mode ce-* extensions), sensitive keys at any depth of
// a JSON body, `Bearer …` / `Basic …` credentials, data_base64 content, and
// a body that is not JSON by its token-level scan.
type View struct {
	Letter
	Headers map[string][]string `json:"headers"`
	// Body is the JSON body (redacted) when it is JSON.
	Body json.RawMessage `json:"body,omitempty"`
	// BodyText is a body that is not JSON: printable text, truncated to
	// 4 KiB, or a note when it is binary.
	BodyText string `json:"body_text,omitempty"`
}

// Redacted returns the printable view of l.
func Redacted(l Letter) View {
	body, _ := redact.Body(l.Data)
	v := View{Letter: l, Headers: redact.Headers(l.Header)}
	v.Body, v.BodyText = showBody(body)
	return v
}

// showBody pretty-prints a (redacted) JSON body; anything else is shown
// only as bounded text. A structured CloudEvent whose data came as
// data_base64 is shown decoded, as "data", so nothing hides in the
// encoding.
func showBody(data []byte) (json.RawMessage, string) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, ""
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err == nil && !dec.More() {
		if m, ok := doc.(map[string]any); ok {
			if b64, ok := m["data_base64"].(string); ok {
				if raw, err := base64.StdEncoding.DecodeString(b64); err == nil {
					inner, text := showBody(raw)
					delete(m, "data_base64")
					if inner != nil {
						m["data"] = inner
					} else {
						m["data"] = text
					}
				}
			}
		}
		out, err := json.MarshalIndent(doc, "", "  ")
		if err == nil {
			return out, ""
		}
	}
	if !utf8.Valid(data) || bytes.ContainsFunc(data, func(r rune) bool { return r < 0x20 && r != '\n' && r != '\r' && r != '\t' }) {
		return nil, "(binary body, " + strconv.Itoa(len(data)) + " bytes, not shown)"
	}
	if len(data) > maxShownBody {
		cut := maxShownBody
		for cut > 0 && !utf8.RuneStart(data[cut]) {
			cut--
		}
		return nil, string(data[:cut]) + "… (" + strconv.Itoa(len(data)) + " bytes)"
	}
	return nil, string(data)
}
