package envelope

import (
	"testing"

	"github.com/aweber-imbi/imbi-worker/wire"
)

// checkDecodeInvariants: Decode never panics, fails only with a decode
// reason, and a success carries what dispatch relies on.
func checkDecodeInvariants(t *testing.T, m *Message, err error) {
	t.Helper()
	if err != nil {
		if r := ReasonOf(err); r != wire.ReasonInvalidEvent && r != wire.ReasonUnsupportedType {
			t.Fatalf("unexpected reason %q: %v", r, err)
		}
		return
	}
	if m == nil || m.ID() == "" || m.Event.Type() != wire.EventType || m.Data.Rule.Handler == "" {
		t.Fatalf("accepted an event without id, type or handler: %+v", m)
	}
}

func FuzzDecodeStructured(f *testing.F) {
	f.Add(structuredBody(f, nil), wire.ContentTypeCE)
	f.Add([]byte(`{"specversion":"1.0","id":"x","source":"/s","type":"io.imbi.webhook.action.v1","subject":"s","time":"2026-11-25T12:00:00Z","dataschema":"https://x/s","ext":"v","data":{"rule":{"handler":"a#b"},"context":{"project_id":"p","project_slug":"s","org_slug":"o"},"event":{}}}`), "")
	f.Add(structuredBody(f, nil), "")
	f.Add([]byte(`{"specversion":"1.0","id":"x","source":"/s","type":"io.imbi.webhook.action.v1","data":{}}`), "")
	f.Add([]byte(`{"specversion":"1.0","id":"x","source":"/s","type":"io.imbi.webhook.action.v1","data_base64":"e30="}`), wire.ContentTypeCE)
	f.Add([]byte(`[]`), wire.ContentTypeCE)
	dec := newDecoder(f)
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		h := map[string][]string{}
		if contentType != "" {
			h["Content-Type"] = []string{contentType}
		}
		m, err := dec.Decode(h, body)
		checkDecodeInvariants(t, m, err)
		if err == nil && m.Mode == Structured { // the attributes as sdk-go reads them
			requireAgreesWithSDK(t, "fuzz", body, m)
		}
	})
}

func FuzzDecodeBinary(f *testing.F) {
	f.Add("1.0", "d-1.0", "/imbi-gateway/webhooks/wh-1", wire.EventType, "github%23create_issue", "2026-11-25T12:00:00Z", "application/json", []byte(validData))
	f.Add("1.0", "%41", "%2Fx", wire.EventType, "", "", "", []byte(`{"rule":{"handler":"a#b"},"context":{"project_id":"","project_slug":"","org_slug":""},"event":{}}`))
	f.Add("1.0", "x", "/s", "other", "", "", "text/plain", []byte("hi"))
	dec := newDecoder(f)
	f.Fuzz(func(t *testing.T, spec, id, source, typ, subject, tm, ct string, body []byte) {
		h := map[string][]string{"ce-specversion": {spec}, "CE-ID": {id}, "ce-source": {source}, "Ce-Type": {typ}}
		for k, v := range map[string]string{"ce-subject": subject, "ce-time": tm, "Content-Type": ct} {
			if v != "" {
				h[k] = []string{v}
			}
		}
		m, err := dec.Decode(h, body)
		checkDecodeInvariants(t, m, err)
	})
}

// FuzzEnvelopeData: envelope validation of arbitrary data never panics,
// fails only as invalid_event, and whatever it accepts is strict JSON,
// satisfies the schema and decodes as the reference does (checkDecode).
func FuzzEnvelopeData(f *testing.F) {
	f.Add([]byte(validData))
	f.Add([]byte(`{"rule":{"handler":"a#b","handler_config":"{}"},"context":{"project_id":"","project_slug":"","org_slug":""},"event":{}}`))
	f.Add([]byte(`{"rule":{"handler":""},"context":{},"event":null}`))
	for _, doc := range edgeCorpus() {
		if len(doc.data) < 4096 {
			f.Add(doc.data)
		}
	}
	v, err := newValidator()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecode(t, v, data)
	})
}
