package redact

import (
	"encoding/base64"
	"encoding/json"
	"encoding/json/jsontext"
	"regexp"
	"strings"
	"testing"

	"github.com/aweber-imbi/imbi-worker/wire"
)

// FuzzBody: whatever surrounds it (other members, junk strings, nesting,
// bytes after the document that make it unparseable), a canary in a
// sensitive place never comes out of Body: a sensitive key's value at any
// depth (header objects included, any spelling of the name's case), a
// Bearer/Basic credential in any string, and the same inside data_base64
// (JSON or text).
func FuzzBody(f *testing.F) {
	f.Add(uint8(0), uint8(0), "x", []byte(nil), uint8(0))
	f.Add(uint8(1), uint8(3), "\"\\", []byte(" trailing"), uint8(2))
	f.Add(uint8(2), uint8(7), `a":"b`, []byte("}"), uint8(1))
	f.Add(uint8(3), uint8(11), "", []byte("\xff"), uint8(4))
	f.Add(uint8(4), uint8(15), "Bearer", []byte(`,"x":1}`), uint8(0))
	f.Add(uint8(5), uint8(2), `{"password":`, []byte(nil), uint8(3))
	names := wire.SensitiveHeaders()
	b64re := regexp.MustCompile(`"data_base64"\s*:\s*"([^"]*)"`)
	f.Fuzz(func(t *testing.T, place, nameIdx uint8, junk string, trailing []byte, depth uint8) {
		const c = "CANARYs3cr3tX9"
		name := names[int(nameIdx)%len(names)]
		if nameIdx&0x80 != 0 {
			name = strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		}
		junkJSON, _ := json.Marshal(junk)
		wrap := func(inner string) string { // nest at depth%4 levels, arrays and objects
			for i := 0; i < int(depth%4); i++ {
				if i%2 == 0 {
					inner = `{"j":` + string(junkJSON) + `,"n":` + inner + `}`
				} else {
					inner = `[` + string(junkJSON) + `,` + inner + `]`
				}
			}
			return inner
		}
		var doc string
		switch place % 6 {
		case 0: // a header value
			doc = `{"data":{"event":{"metadata":{"headers":{"` + name + `":"` + c + `"}}}}}`
		case 1: // a sensitive key at depth, object value
			doc = `{"data":` + wrap(`{"`+name+`":{"v":"`+c+`"}}`) + `}`
		case 2: // a sensitive key, string value
			doc = `{"x":` + string(junkJSON) + `,"data":` + wrap(`{"`+name+`" : "`+c+`"}`) + `}`
		case 3: // Bearer in any string
			doc = `{"data":` + wrap(`{"note":"a Bearer `+c+` b"}`) + `}`
		case 4: // data_base64, JSON
			doc = `{"specversion":"1.0","data_base64":"` + base64.StdEncoding.EncodeToString([]byte(wrap(`{"`+name+`":"`+c+`"}`))) + `"}`
		case 5: // data_base64, text
			doc = `{"data_base64":"` + base64.StdEncoding.EncodeToString([]byte(junk+" Basic "+c)) + `"}`
		}
		in := append([]byte(doc), trailing...)
		out, paths := Body(in)
		if strings.Contains(string(out), c) {
			t.Fatalf("canary in output:\nin:  %q\nout: %q", in, out)
		}
		if len(paths) == 0 {
			t.Fatalf("nothing reported: %q", in)
		}
		for _, m := range b64re.FindAllSubmatch(out, -1) {
			if raw, err := base64.StdEncoding.DecodeString(string(m[1])); err == nil && strings.Contains(string(raw), c) {
				t.Fatalf("canary in data_base64: %q", raw)
			}
		}
	})
}

// FuzzBodySplice (was the worker's FuzzRedactDeadLetterBody): for any
// bytes, Body does not modify its input, keeps a strict JSON document
// strict JSON, changes nothing without reporting a path, and redacting
// its output again changes nothing.
func FuzzBodySplice(f *testing.F) {
	f.Add([]byte(`{"data":{"event":{"metadata":{"headers":{"authorization":"Bearer x","a":"b"}}}}}`))
	f.Add([]byte(`{"event":{"metadata":{"headers":{"Cookie":[1,{"x":2}],"cookie":null}}}}`))
	f.Add([]byte(`{"data_base64":"eyJldmVudCI6eyJtZXRhZGF0YSI6eyJoZWFkZXJzIjp7ImNvb2tpZSI6IngifX19fQ=="}`))
	f.Add([]byte(`{"password":"x"} {"token": "y"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		in := append([]byte(nil), body...)
		out, paths := Body(body)
		if string(in) != string(body) {
			t.Fatal("input modified")
		}
		if len(paths) == 0 {
			if string(out) != string(body) {
				t.Fatalf("changed without a path: %q -> %q", body, out)
			}
			return
		}
		if jsontext.Value(body).IsValid() && !jsontext.Value(out).IsValid() {
			t.Fatalf("JSON in, not JSON out: %q -> %q", body, out)
		}
		again, more := Body(out)
		if len(more) != 0 || string(again) != string(out) {
			t.Fatalf("second pass changed %q: %v -> %q", out, more, again)
		}
	})
}
