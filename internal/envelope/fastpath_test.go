package envelope

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/plugins"
	"github.com/aweber-imbi/imbi-worker/wire"
	"github.com/aweber-imbi/imbi-worker/wire/wiredata"
)

// fastValid reports whether the fast path takes data.
func fastValid(data []byte) bool {
	_, ok := decodeFast(data)
	return ok
}

// checkFast: whenever the fast path accepts data, encoding/json.Valid
// accepts it, the schema accepts it, and the reference decoder decodes it
// to a reflect.DeepEqual envelope.
func checkFast(t testing.TB, v *validator, data []byte) (fast, schema bool) {
	t.Helper()
	got, fast := decodeFast(data)
	schema = v.validateSchema(data) == nil
	if !fast {
		return fast, schema
	}
	if !json.Valid(data) {
		t.Fatalf("fast path accepts what encoding/json.Valid rejects: %q", data)
	}
	if !schema {
		t.Fatalf("fast path accepts what the schema rejects: %q\nschema: %v", data, v.validateSchema(data))
	}
	want, err := referenceDecode(data)
	if err != nil {
		t.Fatalf("fast path accepts what the reference decoder rejects: %q\n%v", data, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("fast decode differs from the reference: %q\nfast: %#v\nref:  %#v", data, got, want)
	}
	return fast, schema
}

// mutations of a valid envelope: every property the schema names, set to
// every JSON type and some edge values, deleted, or its key re-cased.
func mutationCorpus(t testing.TB) [][]byte {
	t.Helper()
	paths := [][]string{
		{"rule"}, {"rule", "id"}, {"rule", "handler"}, {"rule", "handler_config"}, {"rule", "ordinal"},
		{"plugin"}, {"plugin", "id"}, {"plugin", "slug"},
		{"context"}, {"context", "project_id"}, {"context", "project_slug"}, {"context", "org_slug"},
		{"context", "team_slug"}, {"context", "environment"}, {"context", "assignment_options"},
		{"context", "project_links"}, {"context", "project_type_slugs"}, {"context", "environment_config"},
		{"context", "actor_user_id"}, {"context", "identity"},
		{"external_identifier"},
		{"event"}, {"event", "type"}, {"event", "third_party_service"}, {"event", "attributed_to"},
		{"event", "metadata"}, {"event", "metadata", "webhook_id"}, {"event", "metadata", "headers"},
		{"event", "payload"},
	}
	values := []any{
		nil, true, 0, 7, -3, 1.5, json.Number("1.0"), json.Number("1e2"), "", "x", "a#b", strings.Repeat("h", 256), strings.Repeat("h", 257),
		strings.Repeat("é", 256), strings.Repeat("é", 257), "\\u0041", []any{}, []any{"s"}, []any{1}, map[string]any{},
		map[string]any{"k": "v"}, map[string]any{"k": 1}, map[string]any{"k": nil},
	}
	base := func() map[string]any {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(validData), &m))
		return m
	}
	walk := func(m map[string]any, path []string) (map[string]any, string) {
		for _, p := range path[:len(path)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				return nil, ""
			}
			m = next
		}
		return m, path[len(path)-1]
	}
	var out [][]byte
	add := func(m map[string]any) {
		b, err := json.Marshal(m)
		require.NoError(t, err)
		out = append(out, b)
	}
	add(base())
	for _, path := range paths {
		m := base()
		parent, key := walk(m, path)
		if parent == nil {
			continue
		}
		delete(parent, key)
		add(m)

		m = base()
		parent, key = walk(m, path)
		parent[strings.ToUpper(key)] = parent[key]
		delete(parent, key)
		add(m)

		for _, v := range values {
			m = base()
			parent, key = walk(m, path)
			parent[key] = v
			add(m)
		}
	}
	// Whole-document shapes.
	for _, s := range []string{`null`, `[]`, `"x"`, `1`, `{}`, `{"rule":{}}`, `{`, ``, "{\"rule\":1}\n{}", "\xff"} {
		out = append(out, []byte(s))
	}
	// Duplicate keys: the last one wins for the schema.
	out = append(out, []byte(strings.Replace(validData, `"rule": {`, `"rule": 5, "rule": {`, 1)))
	out = append(out, []byte(strings.Replace(validData, `"rule": {`, `"rule": {"handler": "a#b"}, "rule": 5, "x": {`, 1)))
	// Escaped handler.
	out = append(out, []byte(strings.Replace(validData, `"github#create_issue"`, `"github\u0023create_issue"`, 1)))
	return out
}

// edgeDoc is a document of the edge corpus with the fast path's expected
// verdict.
type edgeDoc struct {
	name string
	data []byte
	fast bool
}

// edgeSlots is a compact envelope with a %s slot for every value the
// edge corpus varies; edgeDefaults fills each slot with a valid value.
const edgeSlots = `{"rule":{"id":%s,"handler":%s,"handler_config":%s,"ordinal":%s},` +
	`"plugin":{"id":%s,"slug":"s"},` +
	`"context":{"project_id":%s,"project_slug":"s","org_slug":"o","team_slug":%s,"assignment_options":%s,` +
	`"project_links":%s,"project_type_slugs":%s,"environment_config":%s,"identity":%s},` +
	`"external_identifier":%s,` +
	`"event":{"type":%s,"metadata":{"webhook_id":%s,"headers":%s},"payload":%s}}`

var edgeSlotNames = []string{"rule.id", "rule.handler", "rule.handler_config", "rule.ordinal", "plugin.id",
	"context.project_id", "context.team_slug", "context.assignment_options", "context.project_links",
	"context.project_type_slugs", "context.environment_config", "context.identity", "external_identifier",
	"event.type", "event.metadata.webhook_id", "event.metadata.headers", "event.payload"}

var edgeDefaults = []string{`"r"`, `"a#b"`, `{"k":[1,2]}`, `3`, `"pl"`, `"p"`, `"t"`, `{"o":1}`, `{"l":"u"}`,
	`["x"]`, `{"e":true}`, `null`, `"ext"`, `"push"`, `"wh"`, `{"h":"v"}`, `{"ref":"main"}`}

// edgeSlot is the index of a slot by name.
func edgeSlot(name string) int {
	for i, n := range edgeSlotNames {
		if n == name {
			return i
		}
	}
	panic(name)
}

// edgeEnvelope fills the slots, with the given ones replaced.
func edgeEnvelope(replace map[string]string) []byte {
	args := make([]any, len(edgeDefaults))
	for i, v := range edgeDefaults {
		args[i] = v
	}
	for name, v := range replace {
		args[edgeSlot(name)] = v
	}
	return fmt.Appendf(nil, edgeSlots, args...)
}

// edgeCorpus: escapes, surrogates, numbers, nesting, duplicates,
// whitespace, trailing bytes, bad UTF-8, control characters, empty
// containers, re-cased and escaped keys; each with the verdict the fast
// path must give.
func edgeCorpus() []edgeDoc {
	var out []edgeDoc
	add := func(name string, data []byte, fast bool) {
		out = append(out, edgeDoc{name, data, fast})
	}
	add("defaults", edgeEnvelope(nil), true)

	// Strings: every string slot, every generic string (payload value,
	// payload key, array item), every form. fast: taken by the fast path.
	strs := []struct {
		lit  string
		fast bool
	}{
		{`"\u00e9t\u00E9"`, true},
		{`"\ud83d\ude00 \uD83D\uDE00"`, true},
		{`"\n\"\\\/\b\f\r\t"`, true},
		{`"\u0000\u001f\u007f"`, true},
		{`"a\u2028b` + "\u2028" + `"`, true},
		{`"é😀 raw"`, true},
		{"\"\x7f\"", true},
		{`""`, true},
		{`"\ud83d"`, false},         // lone high surrogate
		{`"\ude00"`, false},         // lone low surrogate
		{`"\ude00\ud83d"`, false},   // reversed pair
		{`"\ud83d\u0041"`, false},   // high surrogate, then not a low one
		{`"\ud83dx"`, false},        // high surrogate, then a plain byte
		{`"\ud83d\n"`, false},       // high surrogate, then another escape
		{"\"\xff\"", false},         // invalid UTF-8
		{"\"\xc3\"", false},         // truncated sequence
		{"\"\xed\xa0\x80\"", false}, // UTF-8-encoded surrogate
		{"\"\xc0\xaf\"", false},     // overlong
		{"\"a\x01b\"", false},       // control character (JSON error)
		{"\"a\tb\"", false},         // raw tab (JSON error)
		{"\"a\nb\"", false},         // raw newline (JSON error)
		{`"\u12"`, false},           // short \u (JSON error)
		{`"\x41"`, false},           // unknown escape (JSON error)
		{`"\u00G1"`, false},         // bad hex (JSON error)
		{`"abc`, false},             // unterminated
	}
	stringSlots := []string{"rule.id", "plugin.id", "context.project_id", "context.team_slug",
		"external_identifier", "event.type", "event.metadata.webhook_id"}
	for _, s := range strs {
		for _, slot := range stringSlots {
			add("string "+slot+" "+s.lit, edgeEnvelope(map[string]string{slot: s.lit}), s.fast)
		}
		add("payload value "+s.lit, edgeEnvelope(map[string]string{"event.payload": `{"v":` + s.lit + `}`}), s.fast)
		add("payload key "+s.lit, edgeEnvelope(map[string]string{"event.payload": `{` + s.lit + `:1}`}), s.fast)
		add("header key "+s.lit, edgeEnvelope(map[string]string{"event.metadata.headers": `{` + s.lit + `:"v"}`}), s.fast)
		add("header value "+s.lit, edgeEnvelope(map[string]string{"event.metadata.headers": `{"h":` + s.lit + `}`}), s.fast)
		add("project link "+s.lit, edgeEnvelope(map[string]string{"context.project_links": `{` + s.lit + `:` + s.lit + `}`}), s.fast)
		add("type slug "+s.lit, edgeEnvelope(map[string]string{"context.project_type_slugs": `["a",` + s.lit + `]`}), s.fast)
		add("assignment option "+s.lit, edgeEnvelope(map[string]string{"context.assignment_options": `{` + s.lit + `:[` + s.lit + `]}`}), s.fast)
		add("handler_config string "+s.lit, edgeEnvelope(map[string]string{"rule.handler_config": s.lit}), s.fast)
		add("handler_config nested "+s.lit, edgeEnvelope(map[string]string{"rule.handler_config": `[{"k":` + s.lit + `}]`}), s.fast)
		// Unknown member: skipped, but still checked.
		add("unknown member "+s.lit, edgeEnvelope(map[string]string{"event.metadata.webhook_id": `"w","x":` + s.lit}), s.fast)
		// Escapes in a handler are left to the generic path.
		add("handler "+s.lit, edgeEnvelope(map[string]string{"rule.handler": s.lit}),
			s.fast && !strings.Contains(s.lit, `\`) && s.lit != `""`)
	}
	add("handler raw non-ASCII", edgeEnvelope(map[string]string{"rule.handler": `"é#😀"`}), true)
	add("handler 256 code points", edgeEnvelope(map[string]string{"rule.handler": `"` + strings.Repeat("😀", 256) + `"`}), true)
	add("handler 257 code points", edgeEnvelope(map[string]string{"rule.handler": `"` + strings.Repeat("😀", 257) + `"`}), false)

	// Numbers, as generic values (float64) in payload, assignment
	// options and handler_config (kept raw).
	nums := []struct {
		lit  string
		fast bool
	}{
		{`0`, true}, {`-0`, true}, {`-0.0`, true}, {`1.5`, true}, {`0.1`, true}, {`-12.75`, true},
		{`123456789012345678901234567890`, true}, {`5e-324`, true}, {`1e-400`, true},
		{`2.2250738585072014e-308`, true}, {`9007199254740993`, true}, {`0.30000000000000004`, true},
		{`1E2`, true}, {`1e+2`, true}, {`1.0`, true}, {`999999999999999`, true}, {`0.000000000000001`, true},
		{`1234567.1234567891`, true}, {`1.7976931348623157e308`, true},
		// Just past the exact fast path (15 digits): rounding the digits
		// first, then dividing, would round twice.
		{`1.000000000000000111`, true}, {`123456789012345.6`, true}, {`9007199254740993.0`, true}, {`0.1e1`, true},
		{`1e400`, false}, {`-1e400`, false}, {`1.8e308`, false}, {`-1.8E+308`, false}, // out of float64 range: references fail
		{"1" + strings.Repeat("0", 309), false}, {"1" + strings.Repeat("0", 308), true}, {"-1" + strings.Repeat("0", 299), true}, {"0." + strings.Repeat("0", 400) + "1", true},
		{`01`, false}, {`1.`, false}, {`.5`, false}, {`+1`, false}, {`1e`, false}, {`-`, false},
		{`NaN`, false}, {`Infinity`, false}, {`0x10`, false}, {`1.e1`, false}, {`- 1`, false},
	}
	for _, n := range nums {
		add("payload number "+n.lit, edgeEnvelope(map[string]string{"event.payload": `{"n":` + n.lit + `,"l":[` + n.lit + `]}`}), n.fast)
		add("assignment number "+n.lit, edgeEnvelope(map[string]string{"context.assignment_options": `{"n":` + n.lit + `}`}), n.fast)
		add("config number "+n.lit, edgeEnvelope(map[string]string{"rule.handler_config": `[` + n.lit + `]`}), n.fast)
		add("unknown member number "+n.lit, edgeEnvelope(map[string]string{"event.metadata.webhook_id": `"w","x":{"n":` + n.lit + `}`}), n.fast)
		add("context unknown member number "+n.lit, edgeEnvelope(map[string]string{"context.team_slug": `"t","x":[` + n.lit + `]`}), n.fast)
	}
	// Ordinals: plain integer literals of at most 18 digits.
	for _, o := range []struct {
		lit  string
		fast bool
	}{
		{`0`, true}, {`-0`, true}, {`-7`, true}, {`null`, true},
		{`999999999999999999`, true}, {`-999999999999999999`, true},
		{`1000000000000000000`, false}, {`9223372036854775807`, false}, {`9223372036854775808`, false},
		{`-9223372036854775808`, false}, {`1.0`, false}, {`1e2`, false}, {`1.5`, false}, {`"1"`, false}, {`true`, false},
	} {
		add("ordinal "+o.lit, edgeEnvelope(map[string]string{"rule.ordinal": o.lit}), o.fast)
	}

	// Literals and containers.
	for _, g := range []struct {
		lit  string
		fast bool
	}{
		{`true`, true}, {`false`, true}, {`null`, true}, {`[]`, true}, {`{}`, true}, {`[[]]`, true}, {`[{}]`, true},
		{`{"":""}`, true}, {`[1,"a",null,true,{"x":[false]}]`, true},
		{`tru`, false}, {`nul`, false}, {`True`, false}, {`[1,]`, false}, {`{"a":1,}`, false}, {`[,1]`, false},
		{`{"a"}`, false}, {`{"a":}`, false}, {`{1:2}`, false}, {`{'a':1}`, false}, {`[1 2]`, false}, {`{"a":1 "b":2}`, false},
	} {
		add("payload literal "+g.lit, edgeEnvelope(map[string]string{"event.payload": `{"g":` + g.lit + `}`}), g.fast)
	}

	// Empty and null containers (null vs absent vs empty matter).
	for slot, lits := range map[string][]string{
		"rule.handler_config":        {`{}`, `[]`, `""`, `null`},
		"context.assignment_options": {`{}`, `null`},
		"context.project_links":      {`{}`, `null`},
		"context.project_type_slugs": {`[]`, `null`},
		"context.environment_config": {`{}`, `null`},
		"event.metadata.headers":     {`{}`, `null`},
		"event.payload":              {`{}`, `null`},
	} {
		for _, lit := range lits {
			add("container "+slot+" "+lit, edgeEnvelope(map[string]string{slot: lit}), true)
		}
	}
	add("context.identity object", edgeEnvelope(map[string]string{"context.identity": `{"access_token":"t","token_type":"Bearer"}`}), false)
	add("context.identity empty", edgeEnvelope(map[string]string{"context.identity": `{}`}), false)
	add("metadata null", []byte(strings.Replace(string(edgeEnvelope(nil)), `"metadata":{"webhook_id":"wh","headers":{"h":"v"}}`, `"metadata":null`, 1)), true)
	add("plugin null", []byte(strings.Replace(string(edgeEnvelope(nil)), `"plugin":{"id":"pl","slug":"s"}`, `"plugin":null`, 1)), true)
	add("event empty", []byte(`{"rule":{"handler":"a#b"},"context":{"project_id":"","project_slug":"","org_slug":""},"event":{}}`), true)
	add("event null", []byte(`{"rule":{"handler":"a#b"},"context":{"project_id":"","project_slug":"","org_slug":""},"event":null}`), false)

	// Nesting: the envelope, event and payload objects are three levels.
	nested := func(depth int) string {
		return strings.Repeat("[", depth) + strings.Repeat("]", depth)
	}
	add("depth 1000", edgeEnvelope(map[string]string{"event.payload": `{"d":` + nested(maxDepth-3) + `}`}), true)
	add("depth 1001", edgeEnvelope(map[string]string{"event.payload": `{"d":` + nested(maxDepth-2) + `}`}), false)
	add("depth 1001 skipped", edgeEnvelope(map[string]string{"event.metadata.webhook_id": `"w","x":` + nested(maxDepth-2)}), false)
	add("depth 10001", edgeEnvelope(map[string]string{"event.payload": `{"d":` + nested(10000) + `}`}), false)
	add("depth unbalanced", edgeEnvelope(map[string]string{"event.payload": `{"d":` + strings.Repeat("[", 50) + `}`}), false)

	// Duplicate keys: known ones are left to the generic path at every
	// typed level; unknown ones are skipped; in generic maps the last
	// wins.
	for _, dup := range []struct {
		name, from, to string
		fast           bool
	}{
		{"root known", `"external_identifier":"ext"`, `"external_identifier":"a","external_identifier":"ext"`, false},
		{"root known object", `"rule":{`, `"rule":{"handler":"x#y"},"rule":{`, false},
		{"rule known", `"handler":"a#b"`, `"handler":"a#b","handler":"a#b"`, false},
		{"plugin known", `"slug":"s"`, `"slug":"s","slug":"s"`, false},
		{"context known", `"org_slug":"o"`, `"org_slug":"o","org_slug":"o"`, false},
		{"context known container", `"project_links":{"l":"u"}`, `"project_links":{"a":"b"},"project_links":{"l":"u"}`, false},
		{"event known", `"type":"push"`, `"type":"push","type":"pull"`, false},
		{"event payload", `"payload":{"ref":"main"}`, `"payload":{"a":1},"payload":{"ref":"main"}`, false},
		{"metadata known", `"webhook_id":"wh"`, `"webhook_id":"wh","webhook_id":"wh"`, false},
		{"root unknown", `"external_identifier":"ext"`, `"x":1,"external_identifier":"ext","x":{"y":2}`, true},
		{"rule unknown", `"handler":"a#b"`, `"x":1,"handler":"a#b","x":2`, true},
		{"context unknown", `"org_slug":"o"`, `"x":1,"org_slug":"o","x":[]`, true},
		{"event unknown", `"type":"push"`, `"x":1,"type":"push","x":null`, true},
		{"payload", `"payload":{"ref":"main"}`, `"payload":{"ref":"a","ref":"main","n":{"m":1,"m":{"z":2}}}`, true},
		{"headers", `"headers":{"h":"v"}`, `"headers":{"h":"a","h":"v"}`, true},
		{"project links", `"project_links":{"l":"u"}`, `"project_links":{"l":"a","l":"u"}`, true},
		{"assignment options", `"assignment_options":{"o":1}`, `"assignment_options":{"o":[1],"o":1}`, true},
		{"handler_config", `"handler_config":{"k":[1,2]}`, `"handler_config":{"k":1,"k":[1,2]}`, true},
	} {
		doc := string(edgeEnvelope(nil))
		if !strings.Contains(doc, dup.from) {
			panic(dup.name)
		}
		add("duplicate "+dup.name, []byte(strings.Replace(doc, dup.from, dup.to, 1)), dup.fast)
	}

	// Keys: re-cased known names are unknown (and required ones then
	// missing); escaped names of typed objects are left to the generic
	// path; escaped names in generic maps are decoded.
	for _, k := range []struct {
		name, from, to string
		fast           bool
	}{
		{"root re-cased optional", `"external_identifier":`, `"External_identifier":`, true},
		{"root re-cased required", `"rule":`, `"Rule":`, false},
		{"rule re-cased optional", `"ordinal":`, `"ORDINAL":`, true},
		{"context re-cased required", `"project_id":`, `"Project_id":`, false},
		{"root escaped", `"rule":`, `"r\u0075le":`, false},
		{"root escaped unknown", `"external_identifier":`, `"x\u0041":0,"external_identifier":`, false},
		{"rule escaped", `"ordinal":`, `"ordin\u0061l":`, false},
		{"plugin escaped", `"slug":`, `"sl\u0075g":`, false},
		{"context escaped", `"team_slug":`, `"team\u005fslug":`, false},
		{"event escaped", `"type":`, `"typ\u0065":`, false},
		{"metadata escaped", `"headers":`, `"h\u0065aders":`, false},
		{"payload escaped", `"ref":`, `"r\u00e9f\ud83d\ude00":`, true},
		{"headers escaped", `"h":"v"`, `"\u0048\n":"v"`, true},
		{"root non-ASCII unknown", `"external_identifier":`, `"clé":1,"external_identifier":`, true},
	} {
		doc := string(edgeEnvelope(nil))
		if !strings.Contains(doc, k.from) {
			panic(k.name)
		}
		add("key "+k.name, []byte(strings.Replace(doc, k.from, k.to, 1)), k.fast)
	}

	// Whitespace: only space, tab, CR and LF, anywhere between tokens.
	doc := edgeEnvelope(nil)
	spaced := func(ws string) []byte {
		var b []byte
		inString := false
		for i, c := range doc {
			b = append(b, c)
			if c == '"' && (i == 0 || doc[i-1] != '\\') {
				inString = !inString
			}
			if !inString && strings.IndexByte(`{}[],:`, c) >= 0 {
				b = append(b, ws...)
			}
		}
		return append([]byte(ws), b...)
	}
	for _, ws := range []struct {
		ws   string
		fast bool
	}{
		{" ", true}, {"\t", true}, {"\r\n", true}, {" \t\r\n ", true}, {"", true},
		{"\f", false}, {"\v", false}, {"\u00a0", false}, {"\u2028", false}, {"\x00", false},
	} {
		add(fmt.Sprintf("whitespace %q", ws.ws), spaced(ws.ws), ws.fast)
	}
	var indented bytes.Buffer
	if err := json.Indent(&indented, doc, "\r\n", "\t"); err != nil {
		panic(err)
	}
	add("indented", []byte(indented.String()), true)

	// Trailing bytes.
	for _, tail := range []struct {
		tail string
		fast bool
	}{
		{"", true}, {" ", true}, {"\n", true}, {" \t\r\n", true},
		{"x", false}, {"}", false}, {"{}", false}, {"\x00", false}, {",", false}, {" 1", false}, {"\f", false},
	} {
		add(fmt.Sprintf("trailing %q", tail.tail), append(append([]byte(nil), doc...), tail.tail...), tail.fast)
	}
	add("truncated", doc[:len(doc)-1], false)
	add("leading BOM", append([]byte("\ufeff"), doc...), false)
	return out
}

// TestFastPathAgreesWithSchema: on the mutation corpus, the shared
// poison corpus and the edge corpus, whatever the fast path accepts is
// strict JSON, satisfies the schema and decodes as the reference does;
// and it accepts every ordinary valid envelope (so the benchmark figure
// is the fast path's).
func TestFastPathAgreesWithSchema(t *testing.T) {
	t.Parallel()
	v, err := newValidator()
	require.NoError(t, err)
	corpus := mutationCorpus(t)
	corpus = append(corpus, poisonData(t)...)
	var schemaOK, fastOK int
	for _, doc := range corpus {
		fast, schema := checkFast(t, v, doc)
		if schema {
			schemaOK++
		}
		if fast {
			fastOK++
		}
	}
	t.Logf("corpus %d docs: schema accepts %d, fast path accepts %d", len(corpus), schemaOK, fastOK)
	require.Greater(t, len(corpus), 500)
	require.Greater(t, schemaOK, 100)
	require.Less(t, schemaOK, len(corpus)-100)
	// Every schema-valid doc that uses no JSON escape in the handler,
	// only plain integer ordinals and no identity is taken by the fast
	// path.
	require.GreaterOrEqual(t, float64(fastOK)/float64(schemaOK), 0.95)
	require.True(t, fastValid([]byte(validData)))

	edges := edgeCorpus()
	edgeFast := 0
	for _, doc := range edges {
		if fast, _ := checkFast(t, v, doc.data); fast {
			edgeFast++
		}
	}
	t.Logf("edge corpus %d docs: fast path accepts %d", len(edges), edgeFast)
	require.Greater(t, len(edges), 500)
}

// TestFastPathEdgeVerdicts: each edge document gets the verdict it was
// written for: taken (and then equal to the reference, checkFast) or
// declined. A declined valid envelope still decodes by the generic path.
func TestFastPathEdgeVerdicts(t *testing.T) {
	t.Parallel()
	v, err := newValidator()
	require.NoError(t, err)
	for _, doc := range edgeCorpus() {
		fast, schema := checkFast(t, v, doc.data)
		if fast != doc.fast {
			t.Errorf("%s: fast path took it: %v, want %v (schema accepts: %v)\n%q", doc.name, fast, doc.fast, schema, doc.data)
		}
		// Whatever the path, decode agrees with the schema (the reference
		// may still reject a schema-valid envelope, e.g. 1e400).
		if _, err := v.decode(doc.data); err == nil && !schema {
			t.Errorf("%s: decode accepts what the schema rejects", doc.name)
		}
	}
}

// TestFastPathStrictJSON: the fast path never accepts what
// encoding/json.Valid rejects, on every corpus document and on every
// prefix and single-byte corruption of a few valid ones.
func TestFastPathStrictJSON(t *testing.T) {
	t.Parallel()
	var corpus [][]byte
	corpus = append(corpus, mutationCorpus(t)...)
	corpus = append(corpus, poisonData(t)...)
	for _, doc := range edgeCorpus() {
		corpus = append(corpus, doc.data)
	}
	valid := [][]byte{[]byte(validData), edgeEnvelope(map[string]string{"event.payload": `{"s":"\u00e9\ud83d\ude00","n":[-0.5e-3,{}]}`})}
	for _, doc := range valid {
		require.True(t, fastValid(doc), "%s", doc)
		for i := range doc {
			corpus = append(corpus, doc[:i])
			for _, c := range []byte{'"', '\\', '{', '}', '[', ']', ',', ':', ' ', 'x', '0', '-', 0x01, 0xff} {
				mutated := append([]byte(nil), doc...)
				mutated[i] = c
				corpus = append(corpus, mutated)
			}
		}
	}
	accepted := 0
	for _, doc := range corpus {
		if fastValid(doc) {
			accepted++
			require.True(t, json.Valid(doc), "fast path accepts what encoding/json.Valid rejects: %q", doc)
		}
	}
	t.Logf("%d docs, fast path accepts %d", len(corpus), accepted)
	require.Greater(t, accepted, 1000)
}

// poisonData returns the data member of every committed structured
// poison case (shared corpus of the chaos suite).
func poisonData(t testing.TB) [][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "testdata", "poison", "*.json"))
	require.NoError(t, err)
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		var ev map[string]json.RawMessage
		if json.Unmarshal(b, &ev) != nil || ev["data"] == nil {
			continue
		}
		out = append(out, ev["data"])
	}
	return out
}

// TestDecodeRejectsWhatSchemaRejects: whichever path validates, decode
// never returns an envelope the schema rejects, and accepts the valid
// ones (the typed decode agrees with the schema's types).
func TestDecodeRejectsWhatSchemaRejects(t *testing.T) {
	t.Parallel()
	v, err := newValidator()
	require.NoError(t, err)
	decoded := 0
	for _, doc := range mutationCorpus(t) {
		_, err := v.decode(doc)
		schemaErr := v.validateSchema(doc)
		if schemaErr != nil {
			require.Error(t, err, "decode accepted what the schema rejects: %s", doc)
			continue
		}
		if err == nil {
			decoded++
		}
	}
	require.Greater(t, decoded, 100)
}

// TestFastDecodeEqualsReference: on every corpus document the fast path
// accepts, the fast decode equals the reference decode field for field.
func TestFastDecodeEqualsReference(t *testing.T) {
	t.Parallel()
	v, err := newValidator()
	require.NoError(t, err)
	corpus := append(mutationCorpus(t), poisonData(t)...)
	// Extra shapes for the typed context fields.
	for _, ctx := range []string{
		`{"project_id":"p","project_slug":"s","org_slug":"o"}`,
		`{"project_id":"p","project_slug":"s","org_slug":"o","assignment_options":null,"project_links":null,"project_type_slugs":null,"environment_config":null,"identity":null}`,
		`{"project_id":"p","project_slug":"s","org_slug":"o","assignment_options":{"n":1.5,"big":12345678901234567890,"l":[1,"a",null,{"x":true}]},"project_links":{"a":"b"},"project_type_slugs":["x","y"],"environment_config":{"e":{}}}`,
		`{"project_id":"p","project_slug":"s","org_slug":"o","identity":{"access_token":"t","token_type":"Bearer"}}`,
		`{"project_id":"\u00e9\n","project_slug":"s","org_slug":"o","team_slug":"t","environment":"prod","actor_user_id":"u"}`,
	} {
		corpus = append(corpus, []byte(`{"rule":{"handler":"a#b","handler_config":{"k":[1,2]},"ordinal":-3},"plugin":null,"context":`+ctx+`,"event":{"payload":{"n":1e3},"metadata":null}}`))
	}
	for _, doc := range edgeCorpus() {
		corpus = append(corpus, doc.data)
	}
	compared := 0
	for _, doc := range corpus {
		if fast, _ := checkFast(t, v, doc); fast {
			compared++
		}
	}
	require.Greater(t, compared, 500)

	// The values themselves, on one document with every kind.
	got, ok := decodeFast(edgeEnvelope(map[string]string{
		"rule.handler_config": ` [ "\u00e9" , 1 ] `,
		"event.payload":       `{"s":"\u00e9\ud83d\ude00\n","f":-1.25e2,"a":[],"o":{},"z":null,"t":true}`,
		"context.team_slug":   `null`,
	}))
	require.True(t, ok)
	require.Equal(t, `[ "\u00e9" , 1 ]`, string(got.Rule.HandlerConfig))
	require.Equal(t, map[string]any{"s": "é😀\n", "f": -125.0, "a": []any{}, "o": map[string]any{}, "z": nil, "t": true}, got.Event.Payload)
	require.Nil(t, got.Context.TeamSlug)
	require.Equal(t, 3, got.Rule.Ordinal)
}

// TestFastFieldsMatchWireTypes: the names the fast path knows are the
// json names of the wire types' fields, so a field added there fails
// here until the fast path handles it.
func TestFastFieldsMatchWireTypes(t *testing.T) {
	t.Parallel()
	names := func(v any) []string {
		var out []string
		typ := reflect.TypeOf(v)
		for i := range typ.NumField() {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			out = append(out, name)
		}
		return out
	}
	require.Equal(t, names(wiredata.ActionData{}), envelopeFields.names)
	require.Equal(t, names(wire.Rule{}), ruleFields.names)
	require.Equal(t, names(wire.PluginRef{}), pluginFields.names)
	require.Equal(t, names(plugins.PluginContext{}), contextFields.names)
	require.Equal(t, names(plugins.Event{}), eventFields.names)
	require.Equal(t, names(plugins.EventMetadata{}), metadataFields.names)
	for _, f := range []*typedFields{envelopeFields, ruleFields, pluginFields, eventFields, metadataFields} {
		require.Len(t, f.hashes, len(f.names))
	}
	require.Nil(t, contextFields.hashes, "the context is decoded by exact name")
}

// TestFastPathDeclinesJsoniterHashCollision: an unknown name whose
// jsoniter field hash equals a known one's would be decoded by jsoniter
// as the known field, so the fast path declines it. A real collision is
// impractical to write down, so the check runs on a field set whose
// hashes include the unknown name's.
func TestFastPathDeclinesJsoniterHashCollision(t *testing.T) {
	t.Parallel()
	field := func(f *typedFields, member string) (int, bool) {
		d := onePass{data: []byte(member)}
		var seen fieldSet
		return d.field(f, &seen)
	}
	plain := newTypedFields(true, "id", "handler")
	i, ok := field(plain, `"zz":1`)
	require.True(t, ok)
	require.Equal(t, -1, i)
	i, ok = field(plain, `"handler":1`)
	require.True(t, ok)
	require.Equal(t, 1, i)

	colliding := newTypedFields(true, "id", "handler")
	colliding.hashes[1] = jsoniterFieldHash([]byte("zz"))
	_, ok = field(colliding, `"zz":1`)
	require.False(t, ok, "an unknown name with a known name's jsoniter hash is declined")
	i, ok = field(colliding, `"handler":1`)
	require.True(t, ok, "a known name is matched by its bytes")
	require.Equal(t, 1, i)

	// The context is decoded by exact name: no hash check there.
	exact := newTypedFields(false, "id")
	_, ok = field(exact, `"zz":1`)
	require.True(t, ok)
}

// TestHasSpecialByte: the eight-bytes-at-a-time test agrees with the
// byte table for every byte value at every position, and on random
// words.
func TestHasSpecialByte(t *testing.T) {
	t.Parallel()
	want := func(w uint64) bool {
		for i := range 8 {
			if !plain[byte(w>>(8*i))] {
				return true
			}
		}
		return false
	}
	const allPlain = 0x6161616161616161 // "aaaaaaaa"
	for pos := range 8 {
		for c := range 256 {
			w := allPlain&^(0xff<<(8*pos)) | uint64(c)<<(8*pos)
			require.Equal(t, want(w), hasSpecialByte(w), "byte %#x at %d", c, pos)
		}
	}
	require.False(t, hasSpecialByte(allPlain))
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		w := rng.Uint64()
		// Mostly plain ASCII, so both answers occur.
		w &^= rng.Uint64() & rng.Uint64() & 0x8080808080808080
		w |= 0x2020202020202020 &^ (rng.Uint64() & rng.Uint64() & rng.Uint64())
		require.Equal(t, want(w), hasSpecialByte(w), "%#x", w)
	}
}

// TestFastPathConcurrent: decodes sharing the pooled scratch space do
// not see each other's values (run with -race).
func TestFastPathConcurrent(t *testing.T) {
	t.Parallel()
	docs := [][]byte{[]byte(validData)}
	for _, doc := range edgeCorpus() {
		if doc.fast {
			docs = append(docs, doc.data)
		}
	}
	want := make([]wiredata.ActionData, len(docs))
	for i, doc := range docs {
		want[i], _ = referenceDecode(doc)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for round := range 20 {
				for i := range docs {
					j := (i*7 + g + round) % len(docs)
					got, ok := decodeFast(docs[j])
					if !ok || !reflect.DeepEqual(got, want[j]) {
						t.Errorf("doc %d decoded differently under concurrency", j)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}
