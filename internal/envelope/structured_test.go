package envelope

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/wire"
	"github.com/aweber-imbi/imbi-worker/wire/wiredata"
)

// structuredCase is one input of the structured fast path differential.
type structuredCase struct {
	name    string
	headers map[string][]string
	body    []byte
}

var ceHeaders = map[string][]string{"Content-Type": {wire.ContentTypeCE}}

// fastAndFull returns a Decoder with the structured fast path and one
// without it.
func fastAndFull(t testing.TB) (fast, full *Decoder) {
	t.Helper()
	fast = newDecoder(t)
	full = newDecoder(t)
	full.noStructuredFast = true
	return fast, full
}

// checkStructuredEquivalence decodes body with and without the fast path
// and fails unless the results are the same: reflect.DeepEqual Messages
// when both succeed, both failing with the same reason (and, as a fast
// failure is decoded again without it, the same error text) otherwise.
// It also checks the body is not modified. fastOK reports that the fast
// path was taken and succeeded (the result came from it).
func checkStructuredEquivalence(t testing.TB, fast, full *Decoder, headers map[string][]string, body []byte) (fastOK bool) {
	t.Helper()
	orig := bytes.Clone(body)
	wantM, wantErr := full.Decode(headers, body)
	gotM, gotErr := fast.Decode(headers, body)
	if !bytes.Equal(body, orig) {
		t.Fatalf("Decode modified the body:\n%q\n%q", orig, body)
	}
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("fast path: err %v, full path: err %v\nbody: %q", gotErr, wantErr, body)
	}
	if wantErr != nil {
		if ReasonOf(gotErr) != ReasonOf(wantErr) || errorLines(gotErr) != errorLines(wantErr) {
			t.Fatalf("fast path: %v\nfull path: %v\nbody: %q", gotErr, wantErr, body)
		}
	}
	if !reflect.DeepEqual(gotM, wantM) {
		t.Fatalf("Messages differ\nfast: %#v\nfull: %#v\nfast data: %q\nfull data: %q\nbody: %q",
			gotM, wantM, eventData(gotM), eventData(wantM), body)
	}
	// Was the fast result kept (the fast decode succeeded)?
	m, used, err := fast.decode(viewHeaders(headers), body, true)
	if used && err == nil {
		if !reflect.DeepEqual(m, wantM) {
			t.Fatalf("fast decode differs from the full decode\nfast: %#v\nfull: %#v\nbody: %q", m, wantM, body)
		}
		return true
	}
	return false
}

// errorLines is the error text as a sorted list of its lines' parts:
// sdk-go words a ValidationError (a map) in random order.
func errorLines(err error) string {
	parts := strings.FieldsFunc(err.Error(), func(r rune) bool { return r == '\n' })
	var out []string
	for _, p := range parts {
		out = append(out, strings.Split(p, ": ")...)
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}

func eventData(m *Message) []byte {
	if m == nil {
		return nil
	}
	return m.Event.DataEncoded
}

// ceBody builds a structured CloudEvent body from raw member texts
// (`"name":value`), in order.
func ceBody(members ...string) []byte {
	return []byte("{" + strings.Join(members, ",") + "}")
}

// ceMembers are the attributes of a valid event, without data.
var ceMembers = []string{
	`"specversion":"1.0"`, `"id":"d-1.0"`, `"source":"/imbi-gateway/webhooks/wh-1"`,
	`"type":"` + wire.EventType + `"`, `"subject":"github#create_issue"`, `"time":"2026-11-25T12:00:00Z"`,
	`"datacontenttype":"application/json"`,
	`"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"`,
}

// wrapData puts raw data into a valid event: as the first, a middle and
// the last member, and without the datacontenttype attribute.
func wrapData(name string, data []byte) []structuredCase {
	d := `"data":` + string(data)
	without := func(skip string) []string {
		var out []string
		for _, m := range ceMembers {
			if !strings.HasPrefix(m, skip) {
				out = append(out, m)
			}
		}
		return out
	}
	all := without("-")
	mid := len(all) / 2
	return []structuredCase{
		{name + "/first", ceHeaders, ceBody(append([]string{d}, all...)...)},
		{name + "/middle", ceHeaders, ceBody(append(append(append([]string{}, all[:mid]...), d), all[mid:]...)...)},
		{name + "/last", ceHeaders, ceBody(append(append([]string{}, all...), d)...)},
		{name + "/no-datacontenttype", nil, ceBody(append(without(`"datacontenttype"`), d)...)},
	}
}

// readFuzzCorpusFile parses a file of Go's fuzzing corpus format.
func readFuzzCorpusFile(t testing.TB, path string) [][]byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var out [][]byte
	for _, line := range strings.Split(string(raw), "\n")[1:] {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		open := strings.IndexByte(line, '(')
		require.True(t, open > 0 && strings.HasSuffix(line, ")"), "%s: %q", path, line)
		s, err := strconv.Unquote(line[open+1 : len(line)-1])
		require.NoError(t, err, "%s: %q", path, line)
		out = append(out, []byte(s))
	}
	return out
}

// explicitCase is a new case of the differential with the fast path's
// expected verdict (true: taken and kept).
type explicitCase struct {
	name    string
	headers map[string][]string
	body    []byte
	fast    bool
}

// explicitStructuredCases: data positions, tricky strings, non-object
// data, media types, data_base64, duplicates, escaped names, whitespace,
// trailing bytes, specversions, numbers.
func explicitStructuredCases() []explicitCase {
	data := func(payload string) string {
		return `{"rule":{"id":"r","handler":"a#b","handler_config":{"k":[1,2]},"ordinal":0},` +
			`"context":{"project_id":"p","project_slug":"s","org_slug":"o"},` +
			`"event":{"type":"push","payload":` + payload + `}}`
	}
	valid := data(`{"ref":"main"}`)
	d := `"data":` + valid
	sv, id, src, typ := ceMembers[0], ceMembers[1], ceMembers[2], ceMembers[3]
	ct := func(v string) string { return `"datacontenttype":` + strconv.Quote(v) }
	var out []explicitCase
	add := func(name string, fast bool, members ...string) {
		out = append(out, explicitCase{name, ceHeaders, ceBody(members...), fast})
	}
	addRaw := func(name string, fast bool, body string) {
		out = append(out, explicitCase{name, ceHeaders, []byte(body), fast})
	}

	add("data first", true, d, sv, id, src, typ)
	add("data middle", true, sv, id, d, src, typ)
	add("data last", true, sv, id, src, typ, d)
	add("data before specversion and datacontenttype", true, d, ct("application/json"), sv, id, src, typ)
	add("datacontenttype before specversion", true, ct("application/json"), sv, id, src, typ, d)
	for _, s := range []string{`"a \" quote"`, `"a \\\" backslash quote"`, `"a \\"`, `"{"`, `"}"`, `"["`, `"]"`, `","`,
		`"}]},{\"data\":1,"`, `"\\\\\\\\"`, `"\u0022\\u005c"`, `"é ✓ 😀"`} {
		add("payload string "+s, true, sv, id, src, typ, `"data":`+data(`{"s":`+s+`,"t":[`+s+`,{"u":`+s+`}]}`), `"x":"y"`)
	}
	add("payload nested arrays and objects", true, sv, id, src, typ,
		`"data":`+data(`{"a":[[[{"b":[{}, [], "]", "}"]}]]],"c":{"d":{"e":{}}},"n":[0,-1,1.5,-0.25,true,false,null]}`))
	add("payload number 0.5", true, sv, id, src, typ, `"data":`+data(`{"n":0.5}`))
	// jsoniter skips a number starting with 0 as a float32: sdk-go fails
	// on 0.5e39, the envelope decoder accepts it.
	add("payload number 0.5e39", false, sv, id, src, typ, `"data":`+data(`{"n":0.5e39}`))
	add("payload number 1e3", false, sv, id, src, typ, `"data":`+data(`{"n":1e3}`))
	add("payload number 1E3", false, sv, id, src, typ, `"data":`+data(`{"n":1E3}`))
	add("payload deep", true, sv, id, src, typ, `"data":`+data(`{"a":`+strings.Repeat(`[`, 900)+strings.Repeat(`]`, 900)+`}`))
	add("payload deeper than maxDepth", false, sv, id, src, typ, `"data":`+data(`{"a":`+strings.Repeat(`[`, 1001)+strings.Repeat(`]`, 1001)+`}`))
	add("payload invalid JSON", false, sv, id, src, typ, `"data":`+data(`{"n":tru}`))
	add("payload mismatched brackets", false, sv, id, src, typ, `"data":`+data(`{"n":[}`))
	add("payload invalid escape", false, sv, id, src, typ, `"data":`+data(`{"n":"\x"}`))
	add("payload invalid JSON, other type", false, sv, id, src, `"type":"other"`, `"data":`+data(`{"n":tru}`))
	add("payload lone surrogate (the generic envelope path decides)", true, sv, id, src, typ, `"data":`+data(`{"n":"\ud800"}`))

	for _, v := range []string{`null`, `1`, `-2.5`, `"s"`, `"{}"`, `[]`, `[{}]`, `true`} {
		add("data "+v, false, sv, id, src, typ, `"data":`+v)
	}
	add("data {}", false, sv, id, src, typ, `"data":{}`)

	add("datacontenttype absent", true, sv, id, src, typ, d)
	for _, c := range []string{"application/json", "application/json; charset=utf-8", "application/json ; charset=utf-8",
		"text/json", "application/cloudevents+json", "application/cloudevents-batch+json"} {
		add("datacontenttype "+c, true, sv, id, src, typ, ct(c), d)
	}
	// JSON to sdk-go, but not a valid attribute.
	add("datacontenttype empty", false, sv, id, src, typ, ct(""), d)
	for _, c := range []string{"application/vnd.x+json", "text/plain", "application/xml", "Application/JSON", " application/json"} {
		add("datacontenttype "+c, false, sv, id, src, typ, ct(c), d)
		add("datacontenttype "+c+", string data", false, sv, id, src, typ, ct(c), `"data":`+strconv.Quote(valid))
	}
	add("datacontenttype escaped", false, sv, id, src, typ, `"datacontenttype":"application\/json"`, d)
	add("datacontenttype not a string", false, sv, id, src, typ, `"datacontenttype":7`, d)
	add("datacontenttype repeated", false, sv, id, src, typ, ct("application/json"), ct("application/json"), d)
	add("datacontenttype repeated before specversion", false, ct("text/plain"), ct("application/json"), sv, id, src, typ, d)

	add("data_base64 only", false, sv, id, src, typ, `"data_base64":"e30="`)
	add("data_base64 and data", false, sv, id, src, typ, `"data_base64":"e30="`, d)
	add("data_base64 after data", false, sv, id, src, typ, d, `"data_base64":"e30="`)
	add("data repeated", false, sv, id, src, typ, d, `"data":{}`)
	add("data repeated, same", false, sv, id, src, typ, d, d)
	add(`escaped key "d\u0061ta"`, false, sv, id, src, typ, `"d\u0061ta":`+valid)
	add(`escaped key "d\u0061ta" and data`, false, sv, id, src, typ, d, `"d\u0061ta":{}`)
	add(`escaped other key`, false, sv, id, src, typ, `"\u0073ubject":"x"`, d)
	add("empty key", false, sv, id, src, typ, `"":1`, d)
	add("empty key after data", false, sv, id, src, typ, d, `"":1`)
	add("key Data", true, sv, id, src, typ, d, `"Data":1`)
	add("data absent", false, sv, id, src, typ)

	add("specversion 0.3", false, `"specversion":"0.3"`, id, src, typ, d)
	add("specversion 0.3 with datacontentencoding", false, `"specversion":"0.3"`, id, src, typ, `"datacontentencoding":"base64"`, `"data":"e30="`)
	add("specversion 2.0", false, `"specversion":"2.0"`, id, src, typ, d)
	add("specversion repeated", false, sv, id, src, typ, d, sv)
	add("specversion escaped", false, `"specversion":"1\u002e0"`, id, src, typ, d)
	add("specversion number", false, `"specversion":1.0`, id, src, typ, d)
	add("specversion absent", false, id, src, typ, d)

	add("missing id", false, sv, src, typ, d)
	add("other type", false, sv, id, src, `"type":"com.example.other"`, d)
	add("bad time", false, sv, id, src, typ, `"time":"yesterday"`, d)
	add("extension object", false, sv, id, src, typ, `"ext":{"a":1}`, d)
	add("extension number 0.5e39", false, sv, id, src, typ, `"ext":0.5e39`, d)
	add("extension", true, sv, id, src, typ, `"ext":"v"`, `"num":7`, `"flag":true`, d)
	add("data fails the schema", false, sv, id, src, typ, `"data":{"rule":{"handler":7}}`)

	ws := " \t\r\n "
	addRaw("whitespace everywhere", true, ws+"{"+ws+`"specversion"`+ws+":"+ws+`"1.0"`+ws+","+ws+`"id"`+ws+":"+ws+`"x"`+ws+","+ws+
		`"source"`+ws+":"+ws+`"/s"`+ws+","+ws+`"type"`+ws+":"+ws+`"`+wire.EventType+`"`+ws+","+ws+
		`"data"`+ws+":"+ws+valid+ws+","+ws+`"subject"`+ws+":"+ws+`"s"`+ws+"}"+ws)
	addRaw("whitespace, data last", true, "{ "+strings.Join([]string{sv, id, src, typ}, " ,\n ")+" ,\n \"data\" :\n\t"+valid+"\n}\n")
	addRaw("whitespace, data first", true, "{\n  \"data\"  :  "+valid+"  ,\n  "+strings.Join([]string{sv, id, src, typ}, " , ")+" }")
	addRaw("trailing garbage", true, string(ceBody(sv, id, src, typ, d))+`garbage{"data":1}`)
	addRaw("trailing object", true, string(ceBody(sv, id, src, typ, d))+string(ceBody(sv, id, src, typ, d)))
	addRaw("empty object", false, `{}`)
	addRaw("empty body", false, ``)
	addRaw("array body", false, `[`+string(ceBody(sv, id, src, typ, d))+`]`)
	addRaw("leading garbage", false, `x`+string(ceBody(sv, id, src, typ, d)))
	addRaw("trailing comma", false, string(ceBody(sv, id, src, typ, d, ""))) // {...,}
	addRaw("truncated after data", false, strings.TrimSuffix(string(ceBody(sv, id, src, typ, d, `"x":"y"`)), `"x":"y"}`))
	addRaw("unterminated", false, strings.TrimSuffix(string(ceBody(sv, id, src, typ, d)), "}"))
	addRaw("missing colon", false, `{"specversion":"1.0","id":"x","source":"/s","type":"`+wire.EventType+`","data" `+valid+`}`)
	addRaw("missing comma", false, `{"specversion":"1.0","id":"x","source":"/s","type":"`+wire.EventType+`" "data":`+valid+`}`)
	addRaw("not UTF-8", false, string(ceBody(sv, id, src, typ, "\"x\":\"\xff\"", d)))
	addRaw("control character in name", false, string(ceBody(sv, id, src, typ, "\"a\x01\":1", d)))
	out = append(out, explicitCase{"no content type header", nil, ceBody(sv, id, src, typ, d), true})
	out = append(out, explicitCase{"no content type header, data first", nil, ceBody(d, sv, id, src, typ), true})
	return out
}

// structuredCorpus: every input of the differential (explicit cases, the
// sample events, the fuzz corpora, the package's envelope corpora wrapped
// in events, the poison corpus).
func structuredCorpus(t testing.TB) []structuredCase {
	t.Helper()
	var out []structuredCase
	for _, c := range explicitStructuredCases() {
		out = append(out, structuredCase{c.name, c.headers, c.body})
	}
	add := func(name string, body []byte) {
		out = append(out, structuredCase{name, ceHeaders, body}, structuredCase{name + "/no-headers", nil, body})
	}

	// testdata/events: each file as a body, and event specs' data in an event.
	files, err := filepath.Glob(filepath.Join("..", "..", "testdata", "events", "*"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		add(f, b)
		var spec map[string]json.RawMessage
		if json.Unmarshal(b, &spec) == nil && spec["data"] != nil {
			out = append(out, wrapData(f, spec["data"])...)
		}
	}
	// internal/envelope/testdata: the fuzz corpora, each value as a body
	// and as data.
	err = filepath.WalkDir("testdata", func(path string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		for i, v := range readFuzzCorpusFile(t, path) {
			name := fmt.Sprintf("%s#%d", path, i)
			add(name, v)
			out = append(out, wrapData(name, v)...)
		}
		return nil
	})
	require.NoError(t, err)
	// The poison corpus: each file as a body.
	files, err = filepath.Glob(filepath.Join("..", "..", "testdata", "poison", "*"))
	require.NoError(t, err)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		add(f, b)
	}
	// The envelope corpora (valid, mutation, poison data, edge) as data.
	out = append(out, wrapData("validData", []byte(validData))...)
	for i, doc := range mutationCorpus(t) {
		out = append(out, wrapData(fmt.Sprintf("mutation#%d", i), doc)...)
	}
	for i, doc := range poisonData(t) {
		out = append(out, wrapData(fmt.Sprintf("poison-data#%d", i), doc)...)
	}
	for _, doc := range edgeCorpus() {
		out = append(out, wrapData("edge "+doc.name, doc.data)...)
	}
	add("structuredBody", structuredBody(t, nil))
	add("benchBody", benchBody(t))
	return out
}

// TestStructuredFastPathEquivalence: Decode with the structured fast path
// equals Decode without it on every corpus input, and the fast path is
// taken where it should be.
func TestStructuredFastPathEquivalence(t *testing.T) {
	t.Parallel()
	fast, full := fastAndFull(t)
	corpus := structuredCorpus(t)
	taken, skipped := 0, 0
	for _, c := range corpus {
		if checkStructuredEquivalence(t, fast, full, c.headers, c.body) {
			taken++
			var data wiredata.ActionData
			if _, decoded, _ := scanStructured(c.body, &data); !decoded {
				skipped++ // data's end found by skipDataObject
			}
		}
	}
	t.Logf("%d inputs, fast path taken and kept on %d (data skipped, not decoded, on %d)", len(corpus), taken, skipped)
	require.Greater(t, len(corpus), 3000)
	require.Greater(t, taken, 1000)
	require.Greater(t, skipped, 50)

	for _, c := range explicitStructuredCases() {
		got := checkStructuredEquivalence(t, fast, full, c.headers, c.body)
		require.Equal(t, c.fast, got, "%s: fast path taken and kept\nbody: %q", c.name, c.body)
	}
}

// TestStructuredFastPathMutations: the differential on every prefix of a
// valid body and on every single-byte substitution by a JSON structural
// or string byte.
func TestStructuredFastPathMutations(t *testing.T) {
	t.Parallel()
	fast, full := fastAndFull(t)
	sv, id, src, typ := ceMembers[0], ceMembers[1], ceMembers[2], ceMembers[3]
	bodies := [][]byte{
		ceBody(sv, id, src, typ, `"data":{"rule":{"handler":"a#b","handler_config":{"k":["]",{"}":"\""}]}},"context":{"project_id":"p","project_slug":"s","org_slug":"o"},"event":{"payload":{"s":"\\"}}}`, `"x":1`),
		ceBody(`"data" : {"rule":{"handler":"a#b"},"context":{"project_id":"p","project_slug":"s","org_slug":"o"},"event":{"payload":[1,-2.5,true,null]}}`, sv, id, src, typ, `"datacontenttype":"text/json"`),
	}
	taken, total := 0, 0
	for _, body := range bodies {
		for i := 0; i <= len(body); i++ {
			checkStructuredEquivalence(t, fast, full, ceHeaders, body[:i])
			total++
		}
		for i := range body {
			for _, c := range []byte(`"\{}[],: x0e`) {
				if body[i] == c {
					continue
				}
				m := bytes.Clone(body)
				m[i] = c
				if checkStructuredEquivalence(t, fast, full, ceHeaders, m) {
					taken++
				}
				total++
			}
		}
	}
	t.Logf("%d mutated bodies, fast path kept on %d", total, taken)
	require.Greater(t, taken, 100)
}

// TestScanStructuredSpan: the body without data is the expected JSON
// object and DataEncoded the bytes after the colon.
func TestScanStructuredSpan(t *testing.T) {
	t.Parallel()
	tests := []struct {
		body, stripped, data string
	}{
		{`{"specversion":"1.0","data":{"a":"}"}}`, `{"specversion":"1.0"}`, `{"a":"}"}`},
		{`{"data":{"a":"\""},"specversion":"1.0"}`, `{"specversion":"1.0"}`, `{"a":"\""}`},
		{`{"a":1,"data":{},"specversion":"1.0"}`, `{"a":1,"specversion":"1.0"}`, `{}`},
		{` { "a" : 1 , "data" : { } , "specversion" : "1.0" } x`, ` { "a" : 1 , "specversion" : "1.0" } x`, ` { }`},
		{"{\"specversion\":\"1.0\" ,\n\"data\":\n\t{\"b\":[\"\\\\\"]}\n}", "{\"specversion\":\"1.0\" \n}", "\n\t{\"b\":[\"\\\\\"]}"},
	}
	// Envelopes: decodeFastAt finds the end of data.
	for _, env := range []string{string(edgeEnvelope(nil)), string(edgeEnvelope(map[string]string{"event.payload": `{"s":"}\\\"]{[","t":["\"",{"}":"]"}]}`}))} {
		tests = append(tests,
			struct{ body, stripped, data string }{`{"data": ` + env + ` , "specversion":"1.0"}`, `{"specversion":"1.0"}`, ` ` + env},
			struct{ body, stripped, data string }{`{"specversion":"1.0", "data":` + env + `}`, `{"specversion":"1.0"}`, env},
		)
	}
	for _, tt := range tests {
		b := []byte(tt.body)
		var data wiredata.ActionData
		for _, dst := range []*wiredata.ActionData{nil, &data} {
			span, decoded, ok := scanStructured(b, dst)
			require.True(t, ok, tt.body)
			require.Equal(t, dst != nil && strings.Contains(tt.data, `"rule"`), decoded, tt.body)
			stripped := string(b[:span.cutStart]) + string(b[span.cutEnd:])
			require.Equal(t, tt.stripped, stripped, tt.body)
			require.Equal(t, tt.data, string(b[span.valStart:span.valEnd]), tt.body)
		}
	}
}

// TestScanStructuredDeclines: the scan itself declines what it must not
// take (whether or not the full decode would fail anyway).
func TestScanStructuredDeclines(t *testing.T) {
	t.Parallel()
	sv, id, src, typ := ceMembers[0], ceMembers[1], ceMembers[2], ceMembers[3]
	d := `"data":` + validData
	span := func(body []byte) bool {
		var data wiredata.ActionData
		_, _, ok1 := scanStructured(body, nil)
		_, _, ok2 := scanStructured(body, &data)
		require.Equal(t, ok1, ok2, "%q", body)
		return ok1
	}
	require.True(t, span(ceBody(sv, id, src, typ, d)))
	require.True(t, span(ceBody(d, sv)))
	for name, body := range map[string][]byte{
		"data_base64":              ceBody(sv, id, src, typ, `"data_base64":"e30="`, d),
		"data_base64 only":         ceBody(sv, id, src, typ, `"data_base64":"e30="`),
		"data absent":              ceBody(sv, id, src, typ),
		"data repeated":            ceBody(sv, d, d),
		"data null":                ceBody(sv, `"data":null`),
		"data array":               ceBody(sv, `"data":[{}]`),
		"data string":              ceBody(sv, `"data":"{}"`),
		"data number":              ceBody(sv, `"data":1`),
		"escaped data key":         ceBody(sv, `"d\u0061ta":{}`),
		"escaped other key":        ceBody(sv, `"i\u0064":"x"`, d),
		"empty key":                ceBody(sv, `"":1`, d),
		"datacontenttype text":     ceBody(sv, `"datacontenttype":"text/plain"`, d),
		"datacontenttype +json":    ceBody(sv, `"datacontenttype":"application/vnd.x+json"`, d),
		"datacontenttype repeated": ceBody(sv, `"datacontenttype":"text/json"`, `"datacontenttype":"text/json"`, d),
		"datacontenttype escaped":  ceBody(sv, `"datacontenttype":"text\/json"`, d),
		"specversion 0.3":          ceBody(`"specversion":"0.3"`, d),
		"specversion absent":       ceBody(d),
		"specversion repeated":     ceBody(sv, sv, d),
		"exponent in data":         ceBody(sv, `"data":{"n":1e2}`),
		"Exponent in data":         ceBody(sv, `"data":{"n":1E2}`),
		"too deep":                 ceBody(sv, `"data":{"n":`+strings.Repeat("[", maxDepth)+strings.Repeat("]", maxDepth)+`}`),
		"empty object":             []byte(`{}`),
		"not an object":            []byte(`[` + string(ceBody(sv, d)) + `]`),
		"malformed after data":     []byte(`{` + sv + `,` + d + `,"x":}`),
		"unterminated":             []byte(`{` + sv + `,` + d),
		"unterminated data":        []byte(`{` + sv + `,"data":{"a":"}"`),
	} {
		require.False(t, span(body), "%s: %q", name, body)
	}
}

// TestSDKIsJSON: sdkIsJSON(sdkDataMediaType(dct)) is what sdk-go does
// with data: keeps the raw JSON (a JSON string stays quoted) or decodes
// a string.
func TestSDKIsJSON(t *testing.T) {
	t.Parallel()
	for _, dct := range []string{"", "application/json", "application/json; charset=utf-8", "application/json;charset=utf-8",
		"application/json ; x=y", "application/json\t;", "application/json;", ";", " ; ", "application/json\u00a0; x",
		"text/json", "text/json; charset=utf-8", "application/cloudevents+json", "application/cloudevents-batch+json",
		"application/vnd.x+json", "application/ld+json", "text/plain", "application/xml", "Application/JSON",
		"APPLICATION/JSON", " application/json", "application/json ", "application/jsonx", "application/json;a;b", "json"} {
		for _, specFirst := range []bool{true, false} {
			members := []string{`"id":"x"`, `"source":"/s"`, `"type":"t"`, `"datacontenttype":` + strconv.Quote(dct), `"data":"abc"`}
			if specFirst {
				members = append([]string{`"specversion":"1.0"`}, members...)
			} else {
				members = append(members, `"specversion":"1.0"`)
			}
			var ev event.Event
			require.NoError(t, ev.UnmarshalJSON(ceBody(members...)))
			sdk := string(ev.DataEncoded) == `"abc"`
			require.True(t, sdk || string(ev.DataEncoded) == `abc`, "%q: %q", dct, ev.DataEncoded)
			require.Equal(t, sdk, sdkIsJSON(sdkDataMediaType(dct)), "datacontenttype %q", dct)
		}
	}
}

// TestStructuredFastPathBufferReuse: a decoded Message does not refer to
// the pooled buffer the body without data was built in.
func TestStructuredFastPathBufferReuse(t *testing.T) {
	fast, full := fastAndFull(t)
	body := ceBody(ceMembers[0], ceMembers[1], ceMembers[2], ceMembers[3], `"ext":"value"`, `"n":1.5`, `"dataschema":"https://x/s"`,
		`"schemaurl":"https://x/u"`, `"data":`+validData)
	got, err := fast.Decode(ceHeaders, body)
	require.NoError(t, err)
	want, err := full.Decode(ceHeaders, body)
	require.NoError(t, err)
	require.Equal(t, want, got)
	other := ceBody(strings.Repeat(`"zzzzzzzzzzzzzzzz":"zzzzzzzzzzzzzzzzzzzz",`, 20)+ceMembers[0], `"id":"ZZZZZZZZZZZZZ"`, `"data":`+validData)
	for range 100 {
		_, _ = fast.Decode(ceHeaders, other)
	}
	require.True(t, reflect.DeepEqual(want, got), "Message changed after the buffer was reused")
}

// FuzzStructuredFastPathEquivalence: the differential on arbitrary bodies.
func FuzzStructuredFastPathEquivalence(f *testing.F) {
	for _, c := range structuredCorpus(f) {
		if len(c.body) <= 4096 {
			ct := ""
			if c.headers != nil {
				ct = wire.ContentTypeCE
			}
			f.Add(c.body, ct)
		}
	}
	fast, full := fastAndFull(f)
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		h := map[string][]string{}
		if contentType != "" {
			h["Content-Type"] = []string{contentType}
		}
		checkStructuredEquivalence(t, fast, full, h, body)
	})
}

// BenchmarkScanStructured: the scan alone on both bodies, finding the
// end of data by skipping it (skip) or by decoding the envelope (decode,
// what Decode does).
func BenchmarkScanStructured(b *testing.B) {
	for _, c := range benchBodies(b) {
		b.Run(c.name+"/skip", func(b *testing.B) {
			b.SetBytes(int64(len(c.body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, ok := scanStructured(c.body, nil); !ok {
					b.Fatal("declined")
				}
			}
		})
		b.Run(c.name+"/decode", func(b *testing.B) {
			b.SetBytes(int64(len(c.body)))
			b.ReportAllocs()
			for b.Loop() {
				var data wiredata.ActionData
				if _, decoded, ok := scanStructured(c.body, &data); !ok || !decoded {
					b.Fatal("declined")
				}
			}
		})
	}
}

// BenchmarkDecodeStructuredFull: BenchmarkDecodeStructured without the
// structured fast path (sdk-go reads the whole body).
func BenchmarkDecodeStructuredFull(b *testing.B) {
	_, dec := fastAndFull(b)
	benchDecodeStructured(b, dec)
}
