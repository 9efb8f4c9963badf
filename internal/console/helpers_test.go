package console_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/admin"
	"github.com/aweber-imbi/imbi-worker/internal/console"
	"github.com/aweber-imbi/imbi-worker/internal/dlq"
	"github.com/aweber-imbi/imbi-worker/internal/streams"
	"github.com/aweber-imbi/imbi-worker/internal/streams/streamstest"
	"github.com/aweber-imbi/imbi-worker/wire"
)

const testToken = "s3cret-admin-token-for-tests"

// env is an embedded nats-server with the worker's streams, the console
// over them and the admin server in front, on 127.0.0.1.
type env struct {
	nats  *streamstest.Env
	store *dlq.Store
	con   *console.Console
	srv   *httptest.Server
	now   time.Time
}

type envOpts struct {
	token    string
	readOnly bool
	outcomes console.OutcomeReader
	lanes    console.LaneStore
	actions  func() any
	noToken  bool
}

func setup(t testing.TB, o envOpts) *env {
	t.Helper()
	e := &env{nats: streamstest.Start(t, streams.DefaultConfig()), now: time.Now().UTC()}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var err error
	e.store, err = dlq.Open(ctx, e.nats.JS, dlq.Config{})
	require.NoError(t, err)
	tok := o.token
	if tok == "" && !o.noToken {
		tok = testToken
	}
	e.con = console.New(console.Config{Token: tok, ReadOnly: o.readOnly, DLQ: e.store,
		Outcomes: o.outcomes, Lanes: o.lanes, Actions: o.actions})
	t.Cleanup(e.con.Close)
	a := admin.New(admin.Config{Console: e.con})
	e.srv = httptest.NewServer(a.Handler())
	t.Cleanup(e.srv.Close)
	return e
}

// spec is one dead letter the test stores; expectations are computed from
// specs, not by the console's filter code.
type spec struct {
	handler string // "<plugin>#<action>" or "_invalid"
	reason  wire.Reason
	last    wire.Reason
	deadAt  time.Time
	ceID    string
	chain   string
	project string
	body    []byte            // raw body instead of the generated CloudEvent
	hdr     map[string]string // more headers
}

func letterMsg(s spec) *nats.Msg {
	tok := wire.InvalidToken
	work := wire.DefaultSubjectPrefix + ".bad.subject"
	if s.handler != wire.InvalidToken {
		p, a, _ := strings.Cut(s.handler, "#")
		tok = p + "." + a
		work = wire.DefaultSubjectPrefix + "." + tok
	}
	msg := nats.NewMsg(wire.DefaultDLQPrefix + "." + tok)
	body := s.body
	if body == nil {
		data := map[string]any{
			"rule":    map[string]any{"handler": s.handler},
			"context": map[string]any{"project_slug": s.project},
			"event":   map[string]any{"metadata": map[string]any{"headers": map[string]string{"authorization": "Bearer leaked-in-body"}}},
		}
		if s.chain != "" {
			data["chain"] = map[string]any{"id": s.chain, "position": 0}
		}
		body, _ = json.Marshal(map[string]any{"specversion": "1.0", "id": s.ceID, "type": wire.EventType,
			"source": "/imbi-gateway/webhooks/wh-1", "subject": s.handler, "datacontenttype": "application/json", "data": data})
	}
	msg.Data = body
	msg.Header.Set(wire.HeaderContentType, wire.ContentTypeCE)
	msg.Header.Set(wire.HeaderMsgID, s.ceID)
	msg.Header.Set("Authorization", "Bearer header-secret")
	msg.Header.Set(wire.DLQReason, string(s.reason))
	if s.last != "" {
		msg.Header.Set(wire.DLQLastReason, string(s.last))
	}
	msg.Header.Set(wire.DLQError, "boom for "+s.ceID)
	msg.Header.Set(wire.DLQAttempts, "5")
	msg.Header.Set(wire.DLQOriginalSubject, work)
	msg.Header.Set(wire.DLQDeadAt, s.deadAt.Format(time.RFC3339Nano))
	msg.Header.Set(wire.DLQWorker, "test-worker")
	for k, v := range s.hdr {
		msg.Header.Set(k, v)
	}
	return msg
}

func (e *env) publish(t testing.TB, specs []spec) []uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	seqs := make([]uint64, 0, len(specs))
	for chunk := range slices.Chunk(specs, 2000) {
		futures := make([]jetstream.PubAckFuture, len(chunk))
		for i, s := range chunk {
			f, err := e.nats.JS.PublishMsgAsync(letterMsg(s))
			require.NoError(t, err)
			futures[i] = f
		}
		for _, f := range futures {
			select {
			case ack := <-f.Ok():
				require.False(t, ack.Duplicate)
				seqs = append(seqs, ack.Sequence)
			case err := <-f.Err():
				require.NoError(t, err)
			case <-ctx.Done():
				t.Fatal("publish acks timed out")
			}
		}
	}
	return seqs
}

var (
	handlers = []string{"github#create_issue", "github#close_issue", "http#request", "slack#post", wire.InvalidToken}
	reasons  = []wire.Reason{wire.ReasonInvalidConfig, wire.ReasonUnknownHandler, wire.ReasonMaxAttempts, wire.ReasonPanic, wire.ReasonCredentialsMissing, wire.ReasonTimeout, wire.ReasonRateLimited}
)

// manySpecs: n letters cycling handlers (5) and reasons (7), one second
// apart ending at end; every 10th is in chain "c-<i%3>".
func manySpecs(n int, end time.Time) []spec {
	out := make([]spec, n)
	for i := range out {
		s := spec{handler: handlers[i%len(handlers)], reason: reasons[i%len(reasons)],
			deadAt: end.Add(-time.Duration(n-i) * time.Second), ceID: "d-" + strconv.Itoa(i) + ".0",
			project: "proj-" + strconv.Itoa(i%4)}
		if s.reason == wire.ReasonMaxAttempts {
			s.last = wire.ReasonTimeout
		}
		if i%10 == 0 {
			s.chain = "c-" + strconv.Itoa(i%3)
		}
		out[i] = s
	}
	return out
}

// client talks to the console; auth is "bearer", "cookie" (logged in) or
// "" (none).
type client struct {
	t    testing.TB
	base string
	hc   *http.Client
	auth string
	csrf string
}

func (e *env) client(t testing.TB, auth string) *client {
	jar, _ := cookiejar.New(nil)
	c := &client{t: t, base: e.srv.URL, auth: auth,
		hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	if auth == "cookie" {
		c.login(testToken)
	}
	return c
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (c *client) login(token string) {
	c.t.Helper()
	resp, err := c.hc.PostForm(c.base+"/ui/login", url.Values{"token": {token}})
	require.NoError(c.t, err)
	resp.Body.Close()
	require.Equal(c.t, http.StatusSeeOther, resp.StatusCode)
	_, page := c.do("GET", "/ui/dead-letters", nil, nil)
	m := csrfRe.FindStringSubmatch(page)
	require.NotNil(c.t, m, "no csrf token on the page")
	c.csrf = m[1]
}

// do sends a request; body is JSON-encoded unless it is url.Values (a
// form). It returns the status and the body.
func (c *client) do(method, path string, body any, hdr map[string]string) (int, string) {
	c.t.Helper()
	var rd io.Reader
	ctype := ""
	switch b := body.(type) {
	case nil:
	case url.Values:
		rd, ctype = strings.NewReader(b.Encode()), "application/x-www-form-urlencoded"
	case string:
		rd, ctype = strings.NewReader(b), "application/json"
	default:
		j, err := json.Marshal(b)
		require.NoError(c.t, err)
		rd, ctype = strings.NewReader(string(j)), "application/json"
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	require.NoError(c.t, err)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if c.auth == "bearer" {
		req.Header.Set("Authorization", "Bearer "+testToken)
	}
	if c.auth == "cookie" && method == "POST" && strings.HasPrefix(path, "/api/") {
		req.Header.Set(console.CSRFHeader, c.csrf)
	}
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := c.hc.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	return resp.StatusCode, string(b)
}

// getJSON GETs path and decodes a 200 answer into v.
func (c *client) getJSON(path string, v any) {
	c.t.Helper()
	code, body := c.do("GET", path, nil, nil)
	require.Equal(c.t, http.StatusOK, code, body)
	require.NoError(c.t, json.Unmarshal([]byte(body), v), body)
}

// memOutcomes is an in-test OutcomeReader.
type memOutcomes struct {
	mu   sync.Mutex
	outs []console.Outcome
	last console.OutcomeFilter
}

func (m *memOutcomes) add(o console.Outcome) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.outs = append(m.outs, o)
}

func (m *memOutcomes) Recent(_ context.Context, f console.OutcomeFilter) ([]console.Outcome, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.last = f
	var out []console.Outcome
	for i := len(m.outs) - 1; i >= 0 && len(out) < f.Limit; i-- {
		o := m.outs[i]
		if (f.Handler == "" || o.Handler == f.Handler || strings.HasPrefix(o.Handler, f.Handler+"#")) &&
			(f.Status == "" || o.Status == f.Status) &&
			(f.Project == "" || o.Context.ProjectSlug == f.Project || o.Context.ProjectID == f.Project) &&
			(f.Since.IsZero() || !o.Time.Before(f.Since)) {
			out = append(out, o)
		}
	}
	return out, nil
}

// memLanes is an in-test LaneStore.
type memLanes struct {
	mu    sync.Mutex
	lanes []console.Lane
}

func (m *memLanes) List(context.Context) ([]console.Lane, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.lanes), nil
}

func (m *memLanes) Pause(_ context.Context, p console.PauseRequest) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.lanes {
		l := &m.lanes[i]
		if l.Plugin == p.Lane.Plugin && (p.Lane.PluginID == "" || l.PluginID == p.Lane.PluginID) {
			l.Paused, l.PausedUntil, l.Reason, l.SetBy, l.SetAt = true, p.Until, p.Reason, p.By, time.Now()
		}
	}
	return nil
}

func (m *memLanes) Resume(_ context.Context, k console.LaneKey, by string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.lanes {
		l := &m.lanes[i]
		if l.Plugin == k.Plugin && (k.PluginID == "" || l.PluginID == k.PluginID) {
			l.Paused, l.PausedUntil, l.Reason, l.SetBy = false, time.Time{}, "", by
		}
	}
	return nil
}

// drainWork reads every message on the work stream (until none comes for
// 400 ms) with the worker's
// durable consumer, acking each, and returns the CloudEvent ids.
func (e *env) drainWork(t testing.TB) []string {
	t.Helper()
	var ids []string
	for {
		// Fetch with a short wait, not FetchNoWait: a message stored a
		// moment ago may not be pending on the consumer yet.
		batch, err := e.nats.Provisioned.Consumer.Fetch(500, jetstream.FetchMaxWait(400*time.Millisecond))
		require.NoError(t, err)
		got := 0
		for m := range batch.Messages() {
			got++
			var ev struct {
				ID string `json:"id"`
			}
			require.NoError(t, json.Unmarshal(m.Data(), &ev))
			ids = append(ids, ev.ID)
			require.NoError(t, m.Ack())
		}
		if got == 0 {
			return ids
		}
	}
}
