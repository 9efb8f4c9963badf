package chaos_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/test/chaos/chaosplugin"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// poisonDir is the corpus, relative to this package.
const poisonDir = "../../testdata/poison"

// caseHeader names the corpus case on every message, so its dead letter
// (the original message plus Imbi-Dlq-* headers) can be matched to it.
const caseHeader = "Imbi-Test-Case"

// poisonCase is one entry of testdata/poison/corpus.json (fields described
// in testdata/poison/gen.py).
type poisonCase struct {
	Name     string            `json:"name"`
	File     *string           `json:"file"`
	Generate *generateSpec     `json:"generate"`
	Mode     string            `json:"mode"`
	Subject  string            `json:"subject"`
	Headers  map[string]string `json:"headers"`
	Expect   string            `json:"expect"`
	ID       *string           `json:"id"`
	Why      string            `json:"why"`
}

// generateSpec builds bodies and headers too large to commit.
type generateSpec struct {
	Kind             string          `json:"kind"`
	Bytes            int             `json:"bytes"`
	Depth            int             `json:"depth"`
	Header           string          `json:"header"`
	TraceparentBytes int             `json:"traceparent_bytes"`
	Config           json.RawMessage `json:"config"`
}

func loadCorpus(t *testing.T) []poisonCase {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(poisonDir, "corpus.json"))
	require.NoError(t, err)
	var doc struct {
		Cases []poisonCase `json:"cases"`
	}
	require.NoError(t, json.Unmarshal(raw, &doc))
	require.NotEmpty(t, doc.Cases)
	return doc.Cases
}

// message builds the NATS message of a case.
func (c poisonCase) message(t *testing.T) *nats.Msg {
	t.Helper()
	msg := nats.NewMsg(c.Subject)
	for k, v := range c.Headers {
		// Set the name exactly as written: the odd-case cases depend on it.
		msg.Header[k] = []string{v}
	}
	msg.Header[caseHeader] = []string{c.Name}
	if c.File != nil {
		body, err := os.ReadFile(filepath.Join(poisonDir, *c.File))
		require.NoError(t, err)
		msg.Data = body
	}
	if g := c.Generate; g != nil {
		switch g.Kind {
		case "large_payload":
			msg.Data = largeEvent(t, "poison."+c.Name, g.Bytes, g.Config)
		case "deep_nesting":
			msg.Data = nestedEvent(t, "poison."+c.Name, g.Depth)
		case "huge_header":
			prefix := ""
			if strings.EqualFold(g.Header, "ce-type") {
				prefix = "io.imbi." // a plausible start, then junk
			}
			msg.Header[g.Header] = []string{prefix + strings.Repeat("x", g.Bytes)}
			if g.TraceparentBytes > 0 {
				msg.Header[wire.HeaderTraceparent] = []string{"00-" + strings.Repeat("z", g.TraceparentBytes)}
			}
		default:
			t.Fatalf("case %s: unknown generate kind %q", c.Name, g.Kind)
		}
	}
	return msg
}

// baseEvent is a good structured event for chaos#record with the
// payload id set, as a generic document the generators modify.
func baseEvent(t *testing.T, id string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(poisonDir, "ok-legacy-handler.json"))
	require.NoError(t, err)
	var ev map[string]any
	require.NoError(t, json.Unmarshal(raw, &ev))
	ev["id"] = id
	data := ev["data"].(map[string]any)
	data["rule"].(map[string]any)["handler"] = "chaos#record"
	data["event"].(map[string]any)["payload"] = map[string]any{"id": id}
	return ev
}

// largeEvent is an event of about size bytes (a blob in the payload);
// config, when set, replaces handler_config.
func largeEvent(t *testing.T, id string, size int, config json.RawMessage) []byte {
	t.Helper()
	ev := baseEvent(t, id)
	data := ev["data"].(map[string]any)
	if len(config) > 0 {
		data["rule"].(map[string]any)["handler_config"] = config
	}
	small, err := json.Marshal(ev)
	require.NoError(t, err)
	data["event"].(map[string]any)["payload"].(map[string]any)["blob"] = strings.Repeat("A", max(size-len(small)-20, 0))
	body, err := json.Marshal(ev)
	require.NoError(t, err)
	return body
}

// nestedEvent puts depth nested objects under payload.nested.
func nestedEvent(t *testing.T, id string, depth int) []byte {
	t.Helper()
	ev := baseEvent(t, id)
	ev["data"].(map[string]any)["event"].(map[string]any)["payload"].(map[string]any)["nested"] = "@NESTED@"
	body, err := json.Marshal(ev)
	require.NoError(t, err)
	nested := strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth)
	return bytes.Replace(body, []byte(`"@NESTED@"`), []byte(nested), 1)
}

// TestPoisonCorpus publishes every case of testdata/poison interleaved
// with good messages to a real nats-server and one running worker. Every
// poison case must be dead-lettered exactly once with its expected
// Imbi-Dlq-Reason, the dead letter must be the original body byte for
// byte; every good message and every hostile-but-valid ("ok") case must
// run exactly once; and the worker must still be running at the end.
func TestPoisonCorpus(t *testing.T) {
	cases := loadCorpus(t)
	h := newHarness(t, harnessOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	const goodPerCase = 3
	goodCfg, err := json.Marshal(chaosplugin.RecordConfig{Label: "good"})
	require.NoError(t, err)
	var wantRecorded []string
	sent := map[string][]byte{} // case name → body published
	poison := 0
	for i, c := range cases {
		for g := range goodPerCase {
			id := fmt.Sprintf("good.%03d.%d", i, g)
			wantRecorded = append(wantRecorded, id)
			msg, err := encodeRecord(ctx, id, goodCfg)
			require.NoError(t, err)
			_, err = h.js.PublishMsg(ctx, msg)
			require.NoError(t, err)
		}
		msg := c.message(t)
		_, err := h.js.PublishMsg(ctx, msg)
		require.NoError(t, err, "case %s: the server rejected the publish", c.Name)
		sent[c.Name] = msg.Data
		if c.Expect == "ok" {
			require.NotNil(t, c.ID, "ok case %s needs an id", c.Name)
			wantRecorded = append(wantRecorded, *c.ID)
		} else {
			poison++
		}
	}

	missing := h.rec.WaitFor(ctx, wantRecorded)
	require.Empty(t, missing, "good messages and ok cases never ran")
	letters := h.waitDeadLetters(ctx, poison)
	info := h.waitSettled(ctx)
	require.Zero(t, info.NumAckPending, "unacked messages")
	require.Zero(t, info.NumPending, "pending messages")
	h.requireRunning()

	byCase := map[string][]deadLetter{}
	for _, dl := range letters {
		name := dl.Header.Get(caseHeader)
		require.NotEmpty(t, name, "dead letter seq %d lost the original headers", dl.Seq)
		byCase[name] = append(byCase[name], dl)
	}
	counts := h.rec.Counts()
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			got := byCase[c.Name]
			if c.Expect == "ok" {
				require.Empty(t, got, "%s (%s) was dead-lettered: %s", c.Name, c.Why, reasonOf(got))
				require.Equal(t, 1, counts[*c.ID], "%s ran %d times", c.Name, counts[*c.ID])
				return
			}
			require.Len(t, got, 1, "%s (%s): want exactly one dead letter", c.Name, c.Why)
			dl := got[0]
			require.Equal(t, c.Expect, dl.Header.Get(wire.DLQReason),
				"%s (%s): reason; error was %q", c.Name, c.Why, dl.Header.Get(wire.DLQError))
			require.True(t, bytes.Equal(sent[c.Name], dl.Data), "%s: dead letter body is not the original", c.Name)
			require.Equal(t, c.Subject, dl.Header.Get(wire.DLQOriginalSubject))
			require.True(t, strings.HasPrefix(dl.Subject, wire.DefaultDLQPrefix+"."), "dead-letter subject %q", dl.Subject)
			require.LessOrEqual(t, len(dl.Header.Get(wire.DLQError)), wire.DLQErrorMaxBytes)
			require.Equal(t, "1", dl.Header.Get(wire.DLQAttempts), "permanent failures are not retried")
		})
	}
	for _, id := range wantRecorded {
		require.Equal(t, 1, counts[id], "id %s ran %d times", id, counts[id])
	}
	t.Logf("FIGURES poison: %d cases (%d poison, %d hostile-but-valid), %d good messages, %d dead letters",
		len(cases), poison, len(cases)-poison, len(cases)*goodPerCase, len(letters))
}

// TestPoisonRefusedByServer: input beyond the server's limits never
// reaches the worker. A body above max_payload (8 MiB on the embedded
// server and in the crash suite's nats-server) is refused by the client
// library before it is sent (the server announces its limit); headers over
// 64 KiB are refused by JetStream (err_code 10097). The publisher gets the
// error, the work stream stores nothing and there is nothing to
// dead-letter.
func TestPoisonRefusedByServer(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name  string
		build func(*nats.Msg)
		check func(t *testing.T, err error)
	}{
		{"body-over-max-payload", func(m *nats.Msg) {
			m.Data = largeEvent(t, "poison.over-max-payload", 9<<20, nil)
		}, func(t *testing.T, err error) { require.ErrorIs(t, err, nats.ErrMaxPayload) }},
		{"headers-over-64KiB", func(m *nats.Msg) {
			m.Data = largeEvent(t, "poison.over-header-limit", 1024, nil)
			m.Header.Set("X-Junk", strings.Repeat("x", 70<<10))
		}, func(t *testing.T, err error) {
			var apiErr *jetstream.APIError
			require.ErrorAs(t, err, &apiErr)
			require.EqualValues(t, 10097, apiErr.ErrorCode, "header size error code")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := nats.NewMsg("imbi.actions.chaos.record")
			msg.Header.Set(wire.HeaderContentType, wire.ContentTypeCE)
			tc.build(msg)
			_, err := h.js.PublishMsg(ctx, msg)
			tc.check(t, err)
		})
	}
	s, err := h.js.Stream(ctx, wire.DefaultStream)
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	require.Zero(t, info.State.LastSeq, "the work stream stored a refused message")
	require.Empty(t, h.deadLetters(ctx))
	h.requireRunning()
}

func reasonOf(dls []deadLetter) string {
	var out []string
	for _, d := range dls {
		out = append(out, d.Header.Get(wire.DLQReason)+": "+d.Header.Get(wire.DLQError))
	}
	return strings.Join(out, "; ")
}

// encodeRecord is a good structured chaos#record message.
func encodeRecord(ctx context.Context, id string, cfg json.RawMessage) (*nats.Msg, error) {
	return encodeFor(ctx, id, chaosplugin.Slug+"#"+chaosplugin.ActionRecord, cfg)
}
