package redact

import (
	"bytes"
	"encoding/base64"
	"encoding/json/jsontext"
	"io"
	"regexp"
	"slices"
	"strings"

	"github.com/aweber-imbi/imbi-worker/wire"
)

// Body redacts a message body and returns it with the paths of what it
// replaced (nil: body is returned as is). It fails closed:
//
//   - a body that is one strict JSON value (RFC 8259, UTF-8, no duplicate
//     names, nothing after it) is walked token by token: the value of
//     every sensitive key at any depth (wire.IsSensitiveName) becomes
//     "[redacted]" unless it already is, the credential of `Bearer …` and
//     `Basic …` in any string value is replaced, and a root data_base64
//     string is decoded, redacted (as a body) and encoded again, or
//     replaced whole when it is not base64. Only those values are spliced
//     into the original bytes. Paths are dotted JSON paths from the root
//     (data.event.metadata.headers.authorization; data_base64.<path> inside
//     base64 data);
//   - any other body is scanned as text (Opaque).
func Body(body []byte) ([]byte, []string) {
	if out, paths, ok := jsonBody(body, ""); ok {
		return out, paths
	}
	return Opaque(body)
}

type edit struct {
	start, end int64
	repl       []byte
}

var redactedJSON = []byte(`"` + Replacement + `"`)

// jsonBody is Body for a strict JSON document; ok is false when doc is not
// one (then nothing is redacted by it).
func jsonBody(doc []byte, prefix string) (out []byte, paths []string, ok bool) {
	dec := jsontext.NewDecoder(bytes.NewBuffer(doc))
	var edits []edit
	for {
		depth := dec.StackDepth()
		kind, n := dec.StackIndex(depth)
		if kind == '{' && n%2 == 0 && dec.PeekKind() == '"' { // a member name
			tok, err := dec.ReadToken()
			if err != nil {
				return nil, nil, false
			}
			name := tok.String()
			sensitive := sensitiveKey(name)
			if !sensitive && !(depth == 1 && name == "data_base64" && prefix == "") {
				continue
			}
			path := prefix + dotted(dec.StackPointer())
			v, err := dec.ReadValue()
			if err != nil {
				return nil, nil, false
			}
			end := dec.InputOffset()
			start := end - int64(len(v))
			var repl []byte
			var inner []string
			if sensitive {
				if !bytes.Equal(v, redactedJSON) {
					repl = redactedJSON
				}
			} else {
				repl, inner = redactBase64(v)
			}
			if repl != nil {
				edits = append(edits, edit{start, end, repl})
				if inner != nil {
					paths = append(paths, inner...)
				} else {
					paths = append(paths, path)
				}
			}
			continue
		}
		if dec.PeekKind() == '"' {
			v, err := dec.ReadValue()
			if err != nil {
				return nil, nil, false
			}
			if repl := redactString(v); repl != nil {
				end := dec.InputOffset()
				edits = append(edits, edit{end - int64(len(v)), end, repl})
				paths = append(paths, prefix+dotted(dec.StackPointer()))
			}
			continue
		}
		if _, err := dec.ReadToken(); err != nil {
			if err == io.EOF && depth == 0 {
				break
			}
			return nil, nil, false
		}
	}
	if len(edits) == 0 {
		return doc, nil, true
	}
	out = make([]byte, 0, len(doc))
	var at int64
	for _, e := range edits {
		out = append(append(out, doc[at:e.start]...), e.repl...)
		at = e.end
	}
	return append(out, doc[at:]...), paths, true
}

// sensitiveKey: a body key of the one list (headers and body keys).
func sensitiveKey(name string) bool { return Header(name) }

// dotted turns a JSON Pointer into the dotted path of Imbi-Dlq-Redacted
// (decision 0006): /data/event/x → data.event.x.
func dotted(p jsontext.Pointer) string {
	s := strings.TrimPrefix(string(p), "/")
	s = strings.ReplaceAll(s, "/", ".")
	return strings.NewReplacer("~1", "/", "~0", "~").Replace(s)
}

// redactString returns the JSON string v with auth-scheme credentials
// replaced, nil when it has none.
func redactString(v jsontext.Value) []byte {
	if !mayHoldScheme(v) {
		return nil
	}
	s, err := jsontext.AppendUnquote(nil, v)
	if err != nil {
		return nil
	}
	red := authScheme.ReplaceAll(s, []byte("${1}${2}"+Replacement))
	if bytes.Equal(red, s) {
		return nil
	}
	out, _ := jsontext.AppendQuote(nil, red)
	return out
}

func mayHoldScheme(v []byte) bool {
	l := bytes.ToLower(v)
	return bytes.Contains(l, []byte("bearer")) || bytes.Contains(l, []byte("basic"))
}

// redactBase64 redacts the JSON string v holding base64 data: the
// decoded bytes are redacted as a body and encoded again. A value that is
// not a base64 string is replaced whole (it cannot be checked). It returns
// nil when nothing changed, and the inner paths prefixed data_base64.
func redactBase64(v jsontext.Value) ([]byte, []string) {
	if bytes.Equal(v, redactedJSON) {
		return nil, nil
	}
	var s []byte
	var err error
	if v.Kind() == '"' {
		s, err = jsontext.AppendUnquote(nil, v)
	}
	var raw []byte
	if err == nil && v.Kind() == '"' {
		raw, err = base64.StdEncoding.AppendDecode(nil, s)
	}
	if err != nil || v.Kind() != '"' {
		return redactedJSON, []string{"data_base64"}
	}
	red, paths := bodyWithPrefix(raw, "data_base64.")
	if paths == nil {
		return nil, nil
	}
	out, _ := jsontext.AppendQuote(nil, base64.StdEncoding.EncodeToString(red))
	return out, paths
}

func bodyWithPrefix(b []byte, prefix string) ([]byte, []string) {
	if out, paths, ok := jsonBody(b, prefix); ok {
		return out, paths
	}
	out, paths := Opaque(b)
	for i := range paths {
		paths[i] = prefix + paths[i]
	}
	return out, paths
}

// Opaque patterns: a JSON-ish "name": value pair (string or bare value), a
// data_base64 string, then Text's key/value pairs and auth schemes.
var (
	opaquePair   = sensitivePairPattern()
	opaqueBase64 = regexp.MustCompile(`"data_base64"\s*:\s*"([^"]*)"`)
)

// sensitivePairPattern matches "<sensitive name>": value wherever it
// occurs (not only where a JSON reader would see a member name, so no
// earlier text can hide it), the value being a string, possibly
// unterminated, or a bare token.
func sensitivePairPattern() *regexp.Regexp {
	names := wire.SensitiveHeaders()
	slices.Sort(names)
	for i, n := range names {
		names[i] = strings.NewReplacer("-", "[-_]", "_", "[-_]").Replace(regexp.QuoteMeta(n))
	}
	return regexp.MustCompile(`(?i)"(` + strings.Join(names, "|") + `)"\s*:\s*`)
}

// redactPairs replaces the value after every "<sensitive name>": in b.
func redactPairs(b []byte, note func(string)) []byte {
	var out []byte
	at := 0
	for _, m := range opaquePair.FindAllSubmatchIndex(b, -1) {
		if m[0] < at {
			continue // inside a value already replaced
		}
		end := valueEnd(b, m[1])
		if v := b[m[1]:end]; len(v) == 0 || bytes.Equal(v, redactedJSON) || string(v) == Replacement {
			continue
		}
		note("scan:" + strings.ToLower(string(b[m[2]:m[3]])))
		out = append(append(out, b[at:m[1]]...), redactedJSON...)
		at = end
	}
	if out == nil {
		return b
	}
	return append(out, b[at:]...)
}

// valueEnd returns where the JSON-ish value starting at i ends: a string
// at its closing quote, an object or array at its matching bracket (both
// to the end of b when unterminated), anything else at a delimiter.
func valueEnd(b []byte, i int) int {
	depth, inStr := 0, false
	for j := i; j < len(b); j++ {
		c := b[j]
		switch {
		case inStr && c == '\\':
			j++
		case inStr && c == '"':
			inStr = false
			if depth == 0 {
				return j + 1
			}
		case inStr:
		case c == '"':
			inStr = true
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			if depth == 0 {
				return j
			}
			if depth--; depth == 0 {
				return j + 1
			}
		case depth == 0 && (c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			return j
		}
	}
	return len(b)
}

// Opaque redacts bytes that are not one strict JSON value (a body with
// trailing bytes, bad UTF-8, a truncated document, plain text) by a
// token-level scan: the value of a sensitive "name": value pair, data_base64
// strings (decoded and redacted, or replaced whole), secret-looking
// key=value pairs and `Bearer …` / `Basic …` credentials. Each kind of
// replacement is reported once as scan:<what> (scan:password, scan:scheme,
// scan:pair; data_base64.<path> for base64 content).
//
// The scan runs again on its own output until nothing changes: a
// replacement can complete a sensitive pair that overlapped the value it
// replaced ("authorization":"x"token":"secret": the quote closing "x" opens
// "token"), so one pass is not always enough. A body that still changes
// after maxOpaquePasses is replaced whole (scan:body), never returned half
// redacted.
func Opaque(b []byte) ([]byte, []string) {
	var paths []string
	seen := map[string]bool{}
	note := func(p string) {
		if !seen[p] {
			seen[p] = true
			paths = append(paths, p)
		}
	}
	out := b
	for pass := 0; ; pass++ {
		next := opaqueOnce(out, note)
		if bytes.Equal(next, out) {
			break
		}
		if pass == maxOpaquePasses {
			note("scan:body")
			out = []byte(Replacement)
			break
		}
		out = next
	}
	if paths == nil {
		return b, nil
	}
	return out, paths
}

// maxOpaquePasses bounds Opaque's passes (each is linear in the body).
const maxOpaquePasses = 8

// opaqueOnce is one pass of Opaque's scan; its result equals b when
// nothing matched.
func opaqueOnce(b []byte, note func(string)) []byte {
	out := opaqueBase64.ReplaceAllFunc(b, func(m []byte) []byte {
		v := opaqueBase64.FindSubmatchIndex(m)
		repl, inner := redactBase64(jsontext.Value(m[v[2]-1 : v[3]+1]))
		if repl == nil {
			return m
		}
		for _, p := range inner {
			note(p)
		}
		return append(append([]byte(nil), m[:v[2]-1]...), repl...)
	})
	before := out
	out = authScheme.ReplaceAll(out, []byte("${1}${2}"+Replacement))
	if !bytes.Equal(before, out) {
		note("scan:scheme")
	}
	out = redactPairs(out, note)
	before = out
	out = secretPair.ReplaceAll(out, []byte("${1}${2}"+Replacement))
	if !bytes.Equal(before, out) {
		note("scan:pair")
	}
	return out
}
