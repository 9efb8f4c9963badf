package dlq_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/aweber-imbi/imbi-worker/internal/dlq"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// FuzzLetterShow: a dead letter's headers and body are outside input (any
// publisher's bytes). Decoding and the show view never panic, and a value
// planted under a sensitive name never reaches the printable view.
func FuzzLetterShow(f *testing.F) {
	f.Add("imbi.dlq.actions.http.request", "Imbi-Dlq-Reason", "panic", []byte(`{"specversion":"1.0","id":"a","data":{"event":{"metadata":{"headers":{"authorization":"X"}}}}}`))
	f.Add("imbi.dlq.actions._invalid", "ce-id", "%41%zz", []byte("\x00garbage"))
	f.Add("other", "Imbi-Dlq-Dead-At", "2026-13-99", []byte(`{"data_base64":"e30="}`))
	f.Add("imbi.dlq.actions.a", "Nats-Msg-Id", "x.replay.99999999999999999999", []byte(`[1,2,{"cookie":{"deep":1}}]`))
	f.Fuzz(func(t *testing.T, subject, hname, hval string, body []byte) {
		h := nats.Header{}
		if hname != "" {
			h.Set(hname, hval)
		}
		h.Set("Authorization", "Bearer planted-secret-zz")
		// Plant the secret in the body's headers map when it is an event.
		var doc map[string]any
		if json.Unmarshal(body, &doc) == nil && doc != nil {
			doc["headers"] = map[string]any{"x-gitlab-token": "planted-secret-zz"}
			body, _ = json.Marshal(doc)
		}
		l := dlq.NewLetter(wire.DefaultDLQPrefix, 1, subject, time.Unix(0, 0), h, body)
		_ = l.When()
		out, err := json.Marshal(dlq.Redacted(l))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(out), "planted-secret-zz") {
			t.Fatalf("secret shown: %s", out)
		}
	})
}
