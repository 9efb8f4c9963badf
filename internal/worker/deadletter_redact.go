package worker

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"

	"github.com/aweber-imbi/imbi-worker/internal/envelope"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// Dead-letter body redaction (decision 0006). A publisher that forgot to
// redact leaves a secret in data.event.metadata.headers; copied byte for
// byte into the dead letter it would sit in the DLQ stream for its whole
// retention. So when the body is a CloudEvent the worker could decode, the
// values of sensitive headers there (wire.IsSensitiveHeader) that are not
// already "[redacted]" are replaced by "[redacted]" — only those values,
// spliced into the original bytes, so key order, number spelling, every
// other byte and the CloudEvent itself stay as published — and the letter
// says so in Imbi-Dlq-Redacted. Anything else keeps its body byte for byte.

// Paths, from the root of the body, of the webhook headers object.
var (
	structuredHeadersPath = []string{"data", "event", "metadata", "headers"}
	binaryHeadersPath     = []string{"event", "metadata", "headers"}
)

// redactedJSON is "[redacted]" as a JSON string.
var redactedJSON = []byte(`"` + wire.Redacted + `"`)

// redactDeadLetterBody returns the body to dead-letter for a message
// decoded as ev (nil: not a CloudEvent) and the JSON paths of the values
// it redacted, in body order. With no path the body is returned as is.
func redactDeadLetterBody(ev *envelope.Message, body []byte) ([]byte, []string) {
	if ev == nil {
		return body, nil
	}
	switch ev.Mode {
	case envelope.Structured:
		return redactStructured(body)
	case envelope.Binary:
		out, paths, err := redactHeaderValues(body, binaryHeadersPath, "")
		if err != nil {
			return body, nil
		}
		return out, paths
	}
	return body, nil
}

// redactStructured handles a structured-mode event: data inline, or
// data_base64 (decoded, redacted, encoded again).
func redactStructured(body []byte) ([]byte, []string) {
	out, paths, err := redactHeaderValues(body, structuredHeadersPath, "")
	if err != nil {
		return body, nil
	}
	b64, err := findRootString(out, "data_base64")
	if err != nil || b64 == nil {
		return out, paths
	}
	data, err := base64.StdEncoding.DecodeString(b64.value)
	if err != nil {
		return out, paths
	}
	red, inner, err := redactHeaderValues(data, binaryHeadersPath, "data_base64.")
	if err != nil || len(inner) == 0 {
		return out, paths
	}
	enc, _ := json.Marshal(base64.StdEncoding.EncodeToString(red))
	spliced := slices.Concat(out[:b64.start], enc, out[b64.end:])
	return spliced, append(paths, inner...)
}

// span is a value's byte range in a JSON document.
type span struct{ start, end int64 }

// redactHeaderValues replaces, in the JSON document doc, every value of a
// sensitive key in the object at path (every occurrence, duplicate keys
// included) that is not the string "[redacted]". Paths are reported as
// pathPrefix + dotted path. An error means doc is not a single JSON value;
// doc is then not to be touched.
func redactHeaderValues(doc []byte, path []string, pathPrefix string) ([]byte, []string, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var spans []span
	var paths []string
	var walk func(depth int) error
	// walk reads one value; depth is how many path elements lead to it.
	walk = func(depth int) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		delim, ok := tok.(json.Delim)
		if !ok || delim != '{' {
			if ok { // an array: not on the path, skip it whole
				return skipRest(dec)
			}
			return nil
		}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := kt.(string)
			switch {
			case depth == len(path) && wire.IsSensitiveHeader(key):
				var raw json.RawMessage
				if err := dec.Decode(&raw); err != nil {
					return err
				}
				var s string
				if json.Unmarshal(raw, &s) == nil && s == wire.Redacted {
					continue
				}
				end := dec.InputOffset()
				spans = append(spans, span{end - int64(len(raw)), end})
				paths = append(paths, pathPrefix+strings.Join(path, ".")+"."+key)
			case depth < len(path) && key == path[depth]:
				if err := walk(depth + 1); err != nil {
					return err
				}
			default:
				var skip json.RawMessage
				if err := dec.Decode(&skip); err != nil {
					return err
				}
			}
		}
		_, err = dec.Token() // '}'
		return err
	}
	if err := walk(0); err != nil {
		return nil, nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, nil, errors.New("trailing data after the JSON value")
	}
	if len(spans) == 0 {
		return doc, nil, nil
	}
	out := make([]byte, 0, len(doc))
	var at int64
	for _, s := range spans {
		out = append(out, doc[at:s.start]...)
		out = append(out, redactedJSON...)
		at = s.end
	}
	return append(out, doc[at:]...), paths, nil
}

// skipRest consumes the rest of an array or object whose opening token
// was just read.
func skipRest(dec *json.Decoder) error {
	for depth := 1; depth > 0; {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				depth++
			default:
				depth--
			}
		}
	}
	return nil
}

// rootString is a string member of the root object: its value and the
// byte range of its JSON encoding.
type rootString struct {
	value      string
	start, end int
}

// findRootString returns the last string member key of the root object of
// doc (the CloudEvents SDK keeps the last of duplicate keys), nil when
// there is none.
func findRootString(doc []byte, key string) (*rootString, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, nil
	}
	var found *rootString
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		var s string
		if k, _ := kt.(string); k == key && json.Unmarshal(raw, &s) == nil {
			end := int(dec.InputOffset())
			found = &rootString{value: s, start: end - len(raw), end: end}
		}
	}
	return found, nil
}
