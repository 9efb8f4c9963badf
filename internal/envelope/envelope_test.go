package envelope

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/wire"
)

const validData = `{
  "rule": {"id": "r-7", "handler": "github#create_issue",
           "handler_config": {"repository": "/payload/repository/full_name"}, "ordinal": 0},
  "plugin": {"id": "pl-1", "slug": "github"},
  "context": {"project_id": "p-1", "project_slug": "checkout", "org_slug": "acme",
              "team_slug": "payments", "actor_user_id": null,
              "assignment_options": {"service_slug": "github"}},
  "external_identifier": "acme/checkout",
  "event": {"type": "push", "third_party_service": "github", "attributed_to": "",
            "metadata": {"webhook_id": "wh-1", "headers": {"x-github-event": "push", "authorization": "[redacted]"}},
            "payload": {"ref": "refs/heads/main"}}
}`

func structuredBody(t testing.TB, mutate func(map[string]any)) []byte {
	t.Helper()
	var data any
	require.NoError(t, json.Unmarshal([]byte(validData), &data))
	ev := map[string]any{
		"specversion": "1.0", "id": "d-1.0", "source": "/imbi-gateway/webhooks/wh-1",
		"type": wire.EventType, "subject": "github#create_issue", "time": "2026-11-25T12:00:00Z",
		"datacontenttype": "application/json", "data": data,
		"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	}
	if mutate != nil {
		mutate(ev)
	}
	b, err := json.Marshal(ev)
	require.NoError(t, err)
	return b
}

func binaryHeaders() map[string][]string {
	return map[string][]string{
		"ce-specversion": {"1.0"},
		"ce-id":          {"d-1.0"},
		"ce-source":      {"/imbi-gateway/webhooks/wh-1"},
		"ce-type":        {wire.EventType},
		"ce-subject":     {"github%23create_issue"},
		"ce-time":        {"2026-11-25T12:00:00Z"},
		"Content-Type":   {"application/json"},
	}
}

func newDecoder(t testing.TB) *Decoder {
	t.Helper()
	return NewDecoder()
}

func TestDecodeModes(t *testing.T) {
	t.Parallel()
	dec := newDecoder(t)
	oddCase := map[string][]string{}
	for k, v := range binaryHeaders() {
		oddCase[strings.ToUpper(k[:1])+k[1:2]+strings.ToUpper(k[2:])] = v // "CE-ID", "COntent-TYPE"
	}
	noCT := binaryHeaders()
	delete(noCT, "Content-Type")

	tests := []struct {
		name    string
		headers map[string][]string
		body    []byte
		mode    Mode
	}{
		{"structured with content type", map[string][]string{"Content-Type": {wire.ContentTypeCE}}, structuredBody(t, nil), Structured},
		{"structured content type with charset, odd case", map[string][]string{"content-TYPE": {"Application/CloudEvents+JSON; charset=utf-8"}}, structuredBody(t, nil), Structured},
		{"structured without content type", nil, structuredBody(t, nil), Structured},
		{"binary", binaryHeaders(), []byte(validData), Binary},
		{"binary without content type", noCT, []byte(validData), Binary},
		{"binary odd header case", oddCase, []byte(validData), Binary},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, err := dec.Decode(tt.headers, tt.body)
			require.NoError(t, err)
			require.Equal(t, tt.mode, m.Mode)
			require.Equal(t, "d-1.0", m.ID())
			require.Equal(t, "github#create_issue", m.Event.Subject())
			require.Equal(t, "github#create_issue", m.Data.Rule.Handler)
			require.Equal(t, "checkout", m.Data.Context.ProjectSlug)
			require.Equal(t, "refs/heads/main", m.Data.Event.Payload["ref"])
			require.Equal(t, "pl-1", m.Data.Plugin.ID)
			require.JSONEq(t, `{"repository": "/payload/repository/full_name"}`, string(m.Data.Rule.HandlerConfig))
		})
	}
}

func TestDecodeTraceparent(t *testing.T) {
	t.Parallel()
	dec := newDecoder(t)
	const header = "00-11111111111111111111111111111111-2222222222222222-01"
	// The CloudEvent extension wins over the NATS header.
	m, err := dec.Decode(map[string][]string{"Content-Type": {wire.ContentTypeCE}, "Traceparent": {header}}, structuredBody(t, nil))
	require.NoError(t, err)
	require.Equal(t, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", m.Traceparent)
	// Without the extension the header is used.
	m, err = dec.Decode(map[string][]string{"Content-Type": {wire.ContentTypeCE}, "traceparent": {header}},
		structuredBody(t, func(ev map[string]any) { delete(ev, "traceparent") }))
	require.NoError(t, err)
	require.Equal(t, header, m.Traceparent)
	// Binary mode: ce-traceparent.
	h := binaryHeaders()
	h["ce-traceparent"] = []string{header}
	m, err = dec.Decode(h, []byte(validData))
	require.NoError(t, err)
	require.Equal(t, header, m.Traceparent)
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	dec := newDecoder(t)
	ce := map[string][]string{"Content-Type": {wire.ContentTypeCE}}
	with := func(k string, v ...string) map[string][]string {
		h := binaryHeaders()
		if v == nil {
			delete(h, k)
		} else {
			h[k] = v
		}
		return h
	}
	tests := []struct {
		name    string
		headers map[string][]string
		body    []byte
		reason  wire.Reason
		partial bool // Message with the CE id is returned
	}{
		{"plain JSON, no CE markers", map[string][]string{"Content-Type": {"application/json"}}, []byte(validData), wire.ReasonInvalidEvent, false},
		{"no headers, not a CE", nil, []byte(`{"hello": "world"}`), wire.ReasonInvalidEvent, false},
		{"garbage", nil, []byte{0xff, 0x00, 0x13}, wire.ReasonInvalidEvent, false},
		{"structured bad JSON", ce, []byte(`{"specversion": "1.0",`), wire.ReasonInvalidEvent, false},
		{"structured missing id", ce, structuredBody(t, func(ev map[string]any) { delete(ev, "id") }), wire.ReasonInvalidEvent, false},
		{"structured spec 0.3", ce, structuredBody(t, func(ev map[string]any) { ev["specversion"] = "0.3" }), wire.ReasonInvalidEvent, false},
		{"structured other type", ce, structuredBody(t, func(ev map[string]any) { ev["type"] = "com.example.other" }), wire.ReasonUnsupportedType, true},
		{"structured data not an object", ce, structuredBody(t, func(ev map[string]any) { ev["data"] = []int{1} }), wire.ReasonInvalidEvent, true},
		{"structured data missing", ce, structuredBody(t, func(ev map[string]any) { delete(ev, "data") }), wire.ReasonInvalidEvent, true},
		{"structured data fails schema", ce, structuredBody(t, func(ev map[string]any) {
			ev["data"].(map[string]any)["rule"].(map[string]any)["handler"] = 7
		}), wire.ReasonInvalidEvent, true},
		{"structured data xml", ce, structuredBody(t, func(ev map[string]any) { ev["datacontenttype"] = "application/xml" }), wire.ReasonInvalidEvent, true},
		// Strict JSON (decision 0005 §8, issue 12 §3): sdk-go alone accepts these.
		{"structured trailing bytes", ce, append(structuredBody(t, nil), []byte(` {"x":1}`)...), wire.ReasonInvalidEvent, false},
		{"structured trailing garbage", ce, append(structuredBody(t, nil), 'x'), wire.ReasonInvalidEvent, false},
		{"structured duplicate attribute", ce, bytes.Replace(structuredBody(t, nil), []byte(`"id":"d-1.0"`), []byte(`"id":"d-1.0","id":"d-2.0"`), 1), wire.ReasonInvalidEvent, false},
		{"structured duplicate in data", ce, bytes.Replace(structuredBody(t, nil), []byte(`"rule":{`), []byte(`"rule":{"id":"a","id":"b",`), 1), wire.ReasonInvalidEvent, false},
		{"structured empty member name", ce, bytes.Replace(structuredBody(t, nil), []byte(`"id":"d-1.0"`), []byte(`"":1,"id":"d-1.0"`), 1), wire.ReasonInvalidEvent, false},
		{"structured data and data_base64", ce, bytes.Replace(structuredBody(t, nil), []byte(`"id":"d-1.0"`), []byte(`"data_base64":"e30=","id":"d-1.0"`), 1), wire.ReasonInvalidEvent, false},
		{"structured bad UTF-8 in an attribute", ce, bytes.Replace(structuredBody(t, nil), []byte(`"id":"d-1.0"`), []byte("\"id\":\"d-1.0\xff\""), 1), wire.ReasonInvalidEvent, false},
		{"binary missing id", with("ce-id"), []byte(validData), wire.ReasonInvalidEvent, false},
		{"binary bad percent encoding", with("ce-source", "%zz"), []byte(validData), wire.ReasonInvalidEvent, false},
		{"binary bad time", with("ce-time", "yesterday"), []byte(validData), wire.ReasonInvalidEvent, false},
		{"binary spec 0.3", with("ce-specversion", "0.3"), []byte(validData), wire.ReasonInvalidEvent, false},
		{"binary other type", with("ce-type", "io.imbi.other"), []byte(validData), wire.ReasonUnsupportedType, true},
		{"binary body not JSON", binaryHeaders(), []byte("hello"), wire.ReasonInvalidEvent, true},
		{"binary empty body", binaryHeaders(), nil, wire.ReasonInvalidEvent, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, err := dec.Decode(tt.headers, tt.body)
			require.Error(t, err)
			require.Equal(t, tt.reason, ReasonOf(err), err.Error())
			var e *Error
			require.ErrorAs(t, err, &e)
			if tt.partial {
				require.NotNil(t, m)
				require.Equal(t, "d-1.0", m.ID())
			} else {
				require.Nil(t, m)
			}
		})
	}
}

// poisonCase is one entry of testdata/poison/corpus.json (shared with the
// chaos suite; see its gen.py).
type poisonCase struct {
	Name     string            `json:"name"`
	File     *string           `json:"file"`
	Generate json.RawMessage   `json:"generate"`
	Headers  map[string]string `json:"headers"`
	Expect   string            `json:"expect"`
}

// TestDecodePoisonCorpus: every committed poison case that must die in
// decode dies with its reason; every other one decodes.
func TestDecodePoisonCorpus(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("..", "..", "testdata", "poison")
	raw, err := os.ReadFile(filepath.Join(dir, "corpus.json"))
	require.NoError(t, err)
	var corpus struct {
		Cases []poisonCase `json:"cases"`
	}
	require.NoError(t, json.Unmarshal(raw, &corpus))
	dec := newDecoder(t)
	checked := 0
	for _, c := range corpus.Cases {
		if c.File == nil || (len(c.Generate) > 0 && string(c.Generate) != "null") {
			continue // generated bodies are covered by the chaos suite
		}
		body, err := os.ReadFile(filepath.Join(dir, *c.File))
		require.NoError(t, err, c.Name)
		headers := map[string][]string{}
		for k, v := range c.Headers {
			headers[k] = []string{v}
		}
		t.Run(c.Name, func(t *testing.T) {
			_, err := dec.Decode(headers, body)
			switch wire.Reason(c.Expect) {
			case wire.ReasonInvalidEvent, wire.ReasonUnsupportedType:
				require.Error(t, err)
				require.Equal(t, wire.Reason(c.Expect), ReasonOf(err), err.Error())
			default:
				require.NoError(t, err)
			}
		})
		checked++
	}
	require.Greater(t, checked, 20)
}
