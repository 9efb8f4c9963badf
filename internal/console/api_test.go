package console_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/console"
	"github.com/aweber-imbi/imbi-worker/wire"
)

func TestAuthentication(t *testing.T) {
	e := setup(t, envOpts{})
	e.publish(t, manySpecs(3, e.now))
	none, bearer, cookie := e.client(t, ""), e.client(t, "bearer"), e.client(t, "cookie")
	wrong := e.client(t, "")
	for _, tc := range []struct {
		name string
		c    *client
		path string
		hdr  map[string]string
		code int
	}{
		{"api without token", none, "/api/v1/dead-letters", nil, http.StatusUnauthorized},
		{"api wrong bearer", wrong, "/api/v1/dead-letters", map[string]string{"Authorization": "Bearer nope"}, http.StatusUnauthorized},
		{"api basic auth is not a bearer", wrong, "/api/v1/dead-letters", map[string]string{"Authorization": "Basic " + testToken}, http.StatusUnauthorized},
		{"api bearer", bearer, "/api/v1/dead-letters", nil, http.StatusOK},
		{"api cookie", cookie, "/api/v1/dead-letters", nil, http.StatusOK},
		{"api forged cookie", wrong, "/api/v1/dead-letters", map[string]string{"Cookie": console.CookieName + "=forged"}, http.StatusUnauthorized},
		{"ui without token redirects to login", none, "/ui/", nil, http.StatusSeeOther},
		{"ui cookie", cookie, "/ui/", nil, http.StatusOK},
		{"ui bearer", bearer, "/ui/dead-letters", nil, http.StatusOK},
		{"login page open", none, "/ui/login", nil, http.StatusOK},
		{"css open", none, "/ui/static/console.css", nil, http.StatusOK},
		{"healthz stays open", none, "/healthz", nil, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := tc.c.do("GET", tc.path, nil, tc.hdr)
			require.Equal(t, tc.code, code, body)
			require.NotContains(t, body, testToken)
		})
	}

	t.Run("401 names the scheme", func(t *testing.T) {
		resp, err := http.Get(e.srv.URL + "/api/v1/dead-letters")
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		require.True(t, strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer "))
	})
	t.Run("wrong login", func(t *testing.T) {
		code, body := none.do("POST", "/ui/login", url.Values{"token": {"nope"}}, nil)
		require.Equal(t, http.StatusUnauthorized, code)
		require.Contains(t, body, "wrong token")
	})
	t.Run("cookie attributes", func(t *testing.T) {
		resp, err := e.client(t, "").hc.PostForm(e.srv.URL+"/ui/login", url.Values{"token": {testToken}})
		require.NoError(t, err)
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)
		resp.Body.Close()
		var ck *http.Cookie
		for _, c := range resp.Cookies() {
			if c.Name == console.CookieName {
				ck = c
			}
		}
		require.NotNil(t, ck)
		require.True(t, ck.HttpOnly)
		require.Equal(t, http.SameSiteStrictMode, ck.SameSite)
		require.False(t, ck.Secure, "plain HTTP test server")
		require.Equal(t, 12*3600, ck.MaxAge)
		require.NotContains(t, ck.Value, testToken)
	})
	t.Run("logout ends the session", func(t *testing.T) {
		c := e.client(t, "cookie")
		code, _ := c.do("POST", "/ui/logout", url.Values{"csrf": {c.csrf}}, nil)
		require.Equal(t, http.StatusSeeOther, code)
		code, _ = c.do("GET", "/api/v1/dead-letters", nil, nil)
		require.Equal(t, http.StatusUnauthorized, code)
	})
}

func TestConsoleOffWithoutToken(t *testing.T) {
	e := setup(t, envOpts{noToken: true})
	c := e.client(t, "")
	code, body := c.do("GET", "/api/v1/dead-letters", nil, map[string]string{"Authorization": "Bearer anything"})
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, console.EnvToken)
	code, body = c.do("GET", "/ui/", nil, nil)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "set "+console.EnvToken)
	code, _ = c.do("GET", "/healthz", nil, nil)
	require.Equal(t, http.StatusOK, code)
}

func TestReadOnlyRefusesEveryMutation(t *testing.T) {
	lanes := &memLanes{lanes: []console.Lane{{LaneKey: console.LaneKey{Plugin: "github", PluginID: "pl-1"}}}}
	e := setup(t, envOpts{readOnly: true, lanes: lanes})
	seqs := e.publish(t, manySpecs(3, e.now))
	bearer, cookie := e.client(t, "bearer"), e.client(t, "cookie")
	seq := strconv.FormatUint(seqs[0], 10)
	for _, c := range []*client{bearer, cookie} {
		for _, tc := range []struct {
			path string
			body any
		}{
			{"/api/v1/dead-letters/" + seq + "/replay", nil},
			{"/api/v1/dead-letters/" + seq + "/delete", nil},
			{"/api/v1/dead-letters/replay", map[string]any{"all": true, "dry_run": true}},
			{"/api/v1/dead-letters/purge", map[string]any{"all": true}},
			{"/api/v1/lanes/pause", map[string]any{"plugin": "github"}},
			{"/api/v1/lanes/resume", map[string]any{"plugin": "github"}},
			{"/api/v1/jobs/any/cancel", nil},
			{"/ui/dead-letters/" + seq + "/replay", url.Values{"csrf": {cookie.csrf}}},
			{"/ui/dead-letters/purge", url.Values{"csrf": {cookie.csrf}, "all": {"true"}, "confirm": {"yes"}}},
			{"/ui/lanes/pause", url.Values{"csrf": {cookie.csrf}, "plugin": {"github"}}},
		} {
			code, body := c.do("POST", tc.path, tc.body, nil)
			require.Equal(t, http.StatusForbidden, code, "%s %s", c.auth, tc.path)
			require.Contains(t, body, "read-only")
		}
	}
	var p console.Page
	bearer.getJSON("/api/v1/dead-letters", &p)
	require.Equal(t, 3, p.Total, "nothing was replayed or purged")
	ls, _ := lanes.List(t.Context())
	require.False(t, ls[0].Paused)
	_, page := cookie.do("GET", "/ui/dead-letters", nil, nil)
	require.Contains(t, page, `id="read-only"`)
	require.NotContains(t, page, "/replay\"", "no replay forms in read-only mode")
}

func TestCSRFAndOrigin(t *testing.T) {
	e := setup(t, envOpts{})
	e.publish(t, manySpecs(4, e.now))
	cookie, bearer := e.client(t, "cookie"), e.client(t, "bearer")
	purge := map[string]any{"reason": []string{"invalid_config"}, "dry_run": true}
	for _, tc := range []struct {
		name string
		c    *client
		path string
		body any
		hdr  map[string]string
		code int
	}{
		{"api cookie without csrf", cookie, "/api/v1/dead-letters/purge", purge, map[string]string{console.CSRFHeader: ""}, http.StatusForbidden},
		{"api cookie wrong csrf", cookie, "/api/v1/dead-letters/purge", purge, map[string]string{console.CSRFHeader: "x" + cookie.csrf}, http.StatusForbidden},
		{"api cookie csrf", cookie, "/api/v1/dead-letters/purge", purge, nil, http.StatusOK},
		{"ui form without csrf", cookie, "/ui/dead-letters/purge", url.Values{"reason": {"panic"}}, nil, http.StatusForbidden},
		{"ui form csrf of another session", cookie, "/ui/dead-letters/purge", url.Values{"reason": {"panic"}, "csrf": {e.client(t, "cookie").csrf}}, nil, http.StatusForbidden},
		{"ui form csrf", cookie, "/ui/dead-letters/purge", url.Values{"reason": {"panic"}, "csrf": {cookie.csrf}}, nil, http.StatusOK},
		{"cross-site fetch", cookie, "/api/v1/dead-letters/purge", purge, map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"foreign origin", cookie, "/api/v1/dead-letters/purge", purge, map[string]string{"Origin": "http://evil.example"}, http.StatusForbidden},
		{"null origin", cookie, "/api/v1/dead-letters/purge", purge, map[string]string{"Origin": "null"}, http.StatusForbidden},
		{"same origin", cookie, "/api/v1/dead-letters/purge", purge, map[string]string{"Origin": e.srv.URL, "Sec-Fetch-Site": "same-origin"}, http.StatusOK},
		{"bearer needs no csrf", bearer, "/api/v1/dead-letters/purge", purge, nil, http.StatusOK},
		{"bearer foreign origin", bearer, "/api/v1/dead-letters/purge", purge, map[string]string{"Origin": "http://evil.example"}, http.StatusForbidden},
		{"login from another site", e.client(t, ""), "/ui/login", url.Values{"token": {testToken}}, map[string]string{"Origin": "http://evil.example"}, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := tc.c.do("POST", tc.path, tc.body, tc.hdr)
			require.Equal(t, tc.code, code, body)
		})
	}
	var p console.Page
	bearer.getJSON("/api/v1/dead-letters", &p)
	require.Equal(t, 4, p.Total, "dry runs and refused posts purged nothing")
}

func TestListFilters(t *testing.T) {
	e := setup(t, envOpts{})
	specs := manySpecs(140, e.now)
	specs[7].body = []byte(`{"specversion":"1.0","id":"d-7.0","type":"x","data":{"note":"needle-in-body","headers":{"Authorization":"Bearer hunter2-secret"}}}`)
	// The v1.1 dead-letter header wins over the body's data.chain.id.
	specs[10].hdr = map[string]string{console.HeaderChainID: "c-hdr"}
	// Text search covers the first MaxSearchText bytes of a redacted body.
	specs[8].body = []byte(`{"specversion":"1.0","id":"d-8.0","type":"x","data":{"a":"` + strings.Repeat("x", console.MaxSearchText) + ` far-needle"}}`)
	e.publish(t, specs)
	c := e.client(t, "bearer")
	ids := func(keep func(i int, s spec) bool) []string {
		var out []string
		for i := len(specs) - 1; i >= 0; i-- { // newest first
			if keep(i, specs[i]) {
				out = append(out, specs[i].ceID)
			}
		}
		return out
	}
	mid := e.now.Add(-70 * time.Second)
	for _, tc := range []struct {
		name  string
		query string
		want  []string
	}{
		{"all", "", ids(func(int, spec) bool { return true })},
		{"reason", "reason=panic", ids(func(_ int, s spec) bool { return s.reason == wire.ReasonPanic })},
		{"reason matches last reason", "reason=timeout", ids(func(_ int, s spec) bool { return s.reason == wire.ReasonTimeout || s.last == wire.ReasonTimeout })},
		{"two reasons", "reason=panic,rate_limited", ids(func(_ int, s spec) bool {
			return s.reason == wire.ReasonPanic || s.reason == wire.ReasonRateLimited
		})},
		{"handler", "handler=http%23request", ids(func(_ int, s spec) bool { return s.handler == "http#request" })},
		{"bare plugin", "handler=github", ids(func(_ int, s spec) bool { return strings.HasPrefix(s.handler, "github#") })},
		{"chain id", "chain_id=c-1", ids(func(i int, s spec) bool { return s.chain == "c-1" && i != 10 })},
		{"chain id from the header", "chain_id=c-hdr", []string{"d-10.0"}},
		{"since", "since=" + url.QueryEscape(mid.Format(time.RFC3339Nano)), ids(func(_ int, s spec) bool { return !s.deadAt.Before(mid) })},
		{"until", "until=" + url.QueryEscape(mid.Format(time.RFC3339Nano)), ids(func(_ int, s spec) bool { return s.deadAt.Before(mid) })},
		{"text in redacted body", "q=NEEDLE-in", []string{"d-7.0"}},
		{"text search never finds a redacted secret", "q=hunter2", nil},
		{"text search never finds a redacted header value", "q=leaked-in-body", nil},
		{"text past the searched prefix", "q=far-needle", nil},
		{"text within the searched prefix", "q=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", []string{"d-8.0"}},
		{"project in body", "q=" + url.QueryEscape(`"proj-3"`), ids(func(i int, s spec) bool { return i != 7 && i != 8 && s.project == "proj-3" })},
		{"combined", "reason=invalid_config&handler=github", ids(func(_ int, s spec) bool {
			return s.reason == wire.ReasonInvalidConfig && strings.HasPrefix(s.handler, "github#")
		})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p console.Page
			c.getJSON("/api/v1/dead-letters?limit=500&"+tc.query, &p)
			got := []string{}
			for _, l := range p.Letters {
				got = append(got, l.EventID)
			}
			if tc.want == nil {
				tc.want = []string{}
			}
			require.Equal(t, tc.want, got)
			require.Equal(t, len(tc.want), p.Total)
			n := 0
			for _, v := range p.ByReason {
				n += v
			}
			require.Equal(t, p.Total, n)
		})
	}
	for _, bad := range []string{"reason=nope", "handler=a%23b%23c", "since=yesterday", "limit=0", "limit=501", "offset=-1",
		"since=" + url.QueryEscape(e.now.Format(time.RFC3339)) + "&until=" + url.QueryEscape(e.now.Add(-time.Hour).Format(time.RFC3339))} {
		code, body := c.do("GET", "/api/v1/dead-letters?"+bad, nil, nil)
		require.Equal(t, http.StatusBadRequest, code, bad)
		require.Contains(t, body, `"error"`)
	}
}

func TestPagingOverTenThousandLetters(t *testing.T) {
	e := setup(t, envOpts{})
	const n = 10_000
	seqs := e.publish(t, manySpecs(n, e.now))
	c := e.client(t, "bearer")
	for _, tc := range []struct {
		name, query string
		want        int
	}{
		{"all", "", n},
		{"reason", "&reason=panic", (n + 3) / 7}, // i % 7 == 3
		{"handler and chain", "&handler=github&chain_id=c-0", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.want
			if tc.name == "handler and chain" {
				for i := range n {
					if i%10 == 0 && i%3 == 0 && (i%5 == 0 || i%5 == 1) {
						want++
					}
				}
			}
			var got []uint64
			for offset := 0; ; offset += 500 {
				var p console.Page
				c.getJSON("/api/v1/dead-letters?limit=500&offset="+strconv.Itoa(offset)+tc.query, &p)
				require.Equal(t, want, p.Total)
				for _, l := range p.Letters {
					got = append(got, l.Seq)
				}
				if len(p.Letters) < 500 {
					break
				}
			}
			require.Len(t, got, want)
			require.True(t, slices.IsSortedFunc(got, func(a, b uint64) int { return int(b) - int(a) }), "newest first")
			require.Len(t, slices.Compact(slices.Clone(got)), want, "no letter on two pages")
			if tc.name == "all" {
				// got is newest first, seqs oldest first (ElementsMatch is
				// quadratic: too slow for 10k).
				require.Equal(t, seqs, reversed(got))
			}
		})
	}
}

func reversed(s []uint64) []uint64 {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

func TestShowIsRedacted(t *testing.T) {
	e := setup(t, envOpts{})
	seqs := e.publish(t, []spec{{handler: "github#create_issue", reason: wire.ReasonPanic, deadAt: e.now, ceID: "d-1.0", chain: "c-9"}})
	c := e.client(t, "bearer")
	code, body := c.do("GET", "/api/v1/dead-letters/"+strconv.FormatUint(seqs[0], 10), nil, nil)
	require.Equal(t, http.StatusOK, code, body)
	require.NotContains(t, body, "header-secret")
	require.NotContains(t, body, "leaked-in-body")
	var v console.LetterView
	require.NoError(t, json.Unmarshal([]byte(body), &v))
	require.Equal(t, []string{wire.Redacted}, v.Headers["Authorization"])
	require.Equal(t, "c-9", v.ChainID)
	require.Equal(t, "d-1.0", v.EventID)
	require.Contains(t, string(v.Body), `"github#create_issue"`)
	for path, want := range map[string]int{"/api/v1/dead-letters/999": 404, "/api/v1/dead-letters/x": 400, "/api/v1/dead-letters/0": 400} {
		code, _ := c.do("GET", path, nil, nil)
		require.Equal(t, want, code, path)
	}
}

func TestStatsBucketsByReason(t *testing.T) {
	e := setup(t, envOpts{})
	base := e.now.Truncate(time.Hour).Add(-3 * time.Hour)
	e.publish(t, []spec{
		{handler: "a#b", reason: wire.ReasonPanic, deadAt: base.Add(time.Minute), ceID: "1"},
		{handler: "a#b", reason: wire.ReasonPanic, deadAt: base.Add(2 * time.Minute), ceID: "2"},
		{handler: "a#c", reason: wire.ReasonTimeout, deadAt: base.Add(61 * time.Minute), ceID: "3"},
		{handler: "a#c", reason: wire.ReasonPanic, deadAt: base.Add(150 * time.Minute), ceID: "4"},
	})
	c := e.client(t, "bearer")
	var st console.Stats
	c.getJSON("/api/v1/dead-letters/stats?bucket=1h&since="+url.QueryEscape(base.Format(time.RFC3339))+"&until="+url.QueryEscape(base.Add(3*time.Hour).Format(time.RFC3339)), &st)
	require.Equal(t, 4, st.Total)
	require.Equal(t, "1h0m0s", st.Bucket)
	got := map[string]map[string]int{}
	for _, b := range st.Buckets {
		if b.Total > 0 {
			got[b.Start.UTC().Format("15:04")] = b.Counts
		}
	}
	require.Equal(t, map[string]map[string]int{
		base.Format("15:04"):                    {"panic": 2},
		base.Add(time.Hour).Format("15:04"):     {"timeout": 1},
		base.Add(2 * time.Hour).Format("15:04"): {"panic": 1},
	}, got)
	require.Equal(t, map[string]int{"panic": 3, "timeout": 1}, st.ByReason)
	require.Equal(t, map[string]int{"a#b": 2, "a#c": 2}, st.ByHandler)
	c.getJSON("/api/v1/dead-letters/stats?reason=timeout", &st)
	require.Equal(t, 1, st.Total)
	code, _ := c.do("GET", "/api/v1/dead-letters/stats?bucket=1s", nil, nil)
	require.Equal(t, http.StatusBadRequest, code)
	code, _ = c.do("GET", "/api/v1/dead-letters/stats?bucket=1m&since=2000-01-01T00:00:00Z", nil, nil)
	require.Equal(t, http.StatusBadRequest, code, "too many buckets")
}

func pollJob(t *testing.T, c *client, id string) console.JobStatus {
	t.Helper()
	var st console.JobStatus
	require.Eventually(t, func() bool {
		c.getJSON("/api/v1/jobs/"+id, &st)
		return st.State != console.JobRunning
	}, 60*time.Second, 20*time.Millisecond)
	return st
}

func TestBulkReplayOfAFilteredSet(t *testing.T) {
	e := setup(t, envOpts{})
	specs := manySpecs(700, e.now)
	e.publish(t, specs)
	c := e.client(t, "bearer")
	var want []string
	for _, s := range specs {
		if s.reason == wire.ReasonPanic || strings.HasPrefix(s.handler, "slack#") {
			if s.reason == wire.ReasonPanic && strings.HasPrefix(s.handler, "slack#") {
				want = append(want, s.ceID)
			}
		}
	}
	filter := map[string]any{"reason": []string{"panic"}, "handler": []string{"slack"}}

	// Dry run: the count of the full match set, nothing moves.
	code, body := c.do("POST", "/api/v1/dead-letters/replay", map[string]any{"reason": []string{"panic"}, "handler": []string{"slack"}, "dry_run": true}, nil)
	require.Equal(t, http.StatusOK, code, body)
	var dry console.BulkResult
	require.NoError(t, json.Unmarshal([]byte(body), &dry))
	require.Equal(t, console.BulkResult{Matched: len(want), DryRun: true}, dry)
	require.Empty(t, e.drainWork(t))

	// The real thing, far beyond one page, at an unlimited rate.
	filter["rate"] = 0
	code, body = c.do("POST", "/api/v1/dead-letters/replay", filter, nil)
	require.Equal(t, http.StatusAccepted, code, body)
	var job console.JobStatus
	require.NoError(t, json.Unmarshal([]byte(body), &job))
	require.Equal(t, len(want), job.Matched)
	st := pollJob(t, c, job.ID)
	require.Equal(t, console.JobDone, st.State, st.Errors)
	require.Equal(t, len(want), st.Replayed)
	require.Equal(t, len(want), st.Done)

	got := e.drainWork(t)
	require.ElementsMatch(t, want, got, "every matched letter reaches the work stream exactly once")

	var p console.Page
	c.getJSON("/api/v1/dead-letters?reason=panic&handler=slack", &p)
	require.Zero(t, p.Total)
	c.getJSON("/api/v1/dead-letters", &p)
	require.Equal(t, len(specs)-len(want), p.Total)

	// A second run of the same filter finds nothing left to do.
	code, body = c.do("POST", "/api/v1/dead-letters/replay", filter, nil)
	require.Equal(t, http.StatusAccepted, code)
	require.NoError(t, json.Unmarshal([]byte(body), &job))
	require.Equal(t, 0, pollJob(t, c, job.ID).Replayed)
	require.Empty(t, e.drainWork(t))

	var jobs struct {
		Jobs []console.JobStatus `json:"jobs"`
	}
	c.getJSON("/api/v1/jobs", &jobs)
	require.Len(t, jobs.Jobs, 2)
	code, _ = c.do("GET", "/api/v1/jobs/nope", nil, nil)
	require.Equal(t, http.StatusNotFound, code)
}

func TestBulkReplayIsPaced(t *testing.T) {
	e := setup(t, envOpts{})
	e.publish(t, manySpecs(6, e.now))
	c := e.client(t, "bearer")
	start := time.Now()
	code, body := c.do("POST", "/api/v1/dead-letters/replay", map[string]any{"all": true, "rate": 10}, nil)
	require.Equal(t, http.StatusAccepted, code, body)
	var job console.JobStatus
	require.NoError(t, json.Unmarshal([]byte(body), &job))
	require.Equal(t, 6, pollJob(t, c, job.ID).Replayed)
	require.GreaterOrEqual(t, time.Since(start), 450*time.Millisecond, "6 letters at 10/s take at least 0.5 s")
	require.Len(t, e.drainWork(t), 6)
}

func TestCancelAReplayJob(t *testing.T) {
	e := setup(t, envOpts{})
	e.publish(t, manySpecs(20, e.now))
	c := e.client(t, "bearer")
	code, body := c.do("POST", "/api/v1/dead-letters/replay", map[string]any{"all": true, "rate": 5}, nil)
	require.Equal(t, http.StatusAccepted, code, body)
	var job console.JobStatus
	require.NoError(t, json.Unmarshal([]byte(body), &job))
	time.Sleep(300 * time.Millisecond)
	code, body = c.do("POST", "/api/v1/jobs/"+job.ID+"/cancel", nil, nil)
	require.Equal(t, http.StatusOK, code, body)
	require.NoError(t, json.Unmarshal([]byte(body), &job))
	require.Equal(t, console.JobCancelled, job.State)
	require.Less(t, job.Replayed, 20)
	replayed := e.drainWork(t)
	require.Len(t, replayed, job.Replayed, "nothing replayed after the stop")
	var p console.Page
	c.getJSON("/api/v1/dead-letters", &p)
	require.Equal(t, 20-job.Replayed, p.Total)
	code, _ = c.do("POST", "/api/v1/jobs/nope/cancel", nil, nil)
	require.Equal(t, http.StatusNotFound, code)
}

func TestReplayAndDeleteOne(t *testing.T) {
	e := setup(t, envOpts{})
	seqs := e.publish(t, manySpecs(3, e.now))
	c := e.client(t, "bearer")
	code, body := c.do("POST", "/api/v1/dead-letters/"+strconv.FormatUint(seqs[1], 10)+"/replay", nil, nil)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, []string{"d-1.0"}, e.drainWork(t))
	code, _ = c.do("POST", "/api/v1/dead-letters/"+strconv.FormatUint(seqs[1], 10)+"/replay", nil, nil)
	require.Equal(t, http.StatusNotFound, code, "already replayed")
	code, _ = c.do("POST", "/api/v1/dead-letters/"+strconv.FormatUint(seqs[0], 10)+"/delete", nil, nil)
	require.Equal(t, http.StatusOK, code)
	var p console.Page
	c.getJSON("/api/v1/dead-letters", &p)
	require.Equal(t, 1, p.Total)
	require.Equal(t, seqs[2], p.Letters[0].Seq)
	require.Empty(t, e.drainWork(t), "delete publishes nothing")
}

func TestPurgeByFilter(t *testing.T) {
	e := setup(t, envOpts{})
	specs := manySpecs(70, e.now)
	e.publish(t, specs)
	c := e.client(t, "bearer")
	for _, tc := range []struct {
		name string
		body any
		code int
		want console.BulkResult
	}{
		{"no filter", map[string]any{}, 400, console.BulkResult{}},
		{"all with a filter", map[string]any{"all": true, "reason": []string{"panic"}}, 400, console.BulkResult{}},
		{"unknown field", `{"reasons":["panic"]}`, 400, console.BulkResult{}},
		{"dry run", map[string]any{"reason": []string{"panic"}, "dry_run": true}, 200, console.BulkResult{Matched: 10, DryRun: true}},
		{"purge", map[string]any{"reason": []string{"panic"}}, 200, console.BulkResult{Matched: 10, Purged: 10}},
		{"again", map[string]any{"reason": []string{"panic"}}, 200, console.BulkResult{}},
		{"chain", map[string]any{"chain_id": "c-2"}, 200, console.BulkResult{Matched: 2, Purged: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := c.do("POST", "/api/v1/dead-letters/purge", tc.body, nil)
			require.Equal(t, tc.code, code, body)
			if code == 200 {
				var got console.BulkResult
				require.NoError(t, json.Unmarshal([]byte(body), &got))
				require.Equal(t, tc.want, got)
			}
		})
	}
	var p console.Page
	c.getJSON("/api/v1/dead-letters?limit=500", &p)
	require.Equal(t, 58, p.Total)
	for _, l := range p.Letters {
		require.NotEqual(t, "panic", l.Reason)
	}
	code, body := c.do("POST", "/api/v1/dead-letters/purge", map[string]any{"all": true}, nil)
	require.Equal(t, 200, code, body)
	c.getJSON("/api/v1/dead-letters", &p)
	require.Zero(t, p.Total)
	require.Empty(t, e.drainWork(t))
}

func TestIndexFollowsTheStream(t *testing.T) {
	e := setup(t, envOpts{})
	seqs := e.publish(t, manySpecs(5, e.now))
	c := e.client(t, "bearer")
	var p console.Page
	c.getJSON("/api/v1/dead-letters", &p)
	require.Equal(t, 5, p.Total)
	// Someone else (the CLI) deletes one and the worker adds one.
	require.NoError(t, e.store.Delete(t.Context(), seqs[2]))
	e.publish(t, []spec{{handler: "x#y", reason: wire.ReasonPanic, deadAt: e.now, ceID: "new"}})
	c.getJSON("/api/v1/dead-letters", &p)
	require.Equal(t, 5, p.Total)
	var got []string
	for _, l := range p.Letters {
		got = append(got, l.EventID)
	}
	require.Equal(t, []string{"new", "d-4.0", "d-3.0", "d-1.0", "d-0.0"}, got)
}

func TestOutcomes(t *testing.T) {
	outs := &memOutcomes{}
	now := time.Now().UTC()
	for i, st := range []string{"succeeded", "retrying", "dead_lettered", "succeeded"} {
		outs.add(console.Outcome{ID: "o-" + strconv.Itoa(i), ActionID: "a-" + strconv.Itoa(i), Handler: []string{"github#create_issue", "http#request"}[i%2],
			Status: st, Time: now.Add(time.Duration(i) * time.Second), Context: console.OutcomeContext{ProjectSlug: "proj-" + strconv.Itoa(i%2)}})
	}
	e := setup(t, envOpts{outcomes: outs})
	c := e.client(t, "bearer")
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"", []string{"a-3", "a-2", "a-1", "a-0"}},
		{"status=succeeded", []string{"a-3", "a-0"}},
		{"handler=github", []string{"a-2", "a-0"}},
		{"project=proj-1", []string{"a-3", "a-1"}},
		{"limit=1", []string{"a-3"}},
	} {
		var body struct {
			Outcomes []console.Outcome `json:"outcomes"`
		}
		c.getJSON("/api/v1/outcomes?"+tc.query, &body)
		var got []string
		for _, o := range body.Outcomes {
			got = append(got, o.ActionID)
		}
		require.Equal(t, tc.want, got, tc.query)
	}
	for _, bad := range []string{"status=exploded", "limit=0", "limit=1001", "since=soon"} {
		code, _ := c.do("GET", "/api/v1/outcomes?"+bad, nil, nil)
		require.Equal(t, http.StatusBadRequest, code, bad)
	}

	off := setup(t, envOpts{})
	code, body := off.client(t, "bearer").do("GET", "/api/v1/outcomes", nil, nil)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.JSONEq(t, `{"error":"not enabled in this worker"}`, body)
	_, page := off.client(t, "cookie").do("GET", "/ui/outcomes", nil, nil)
	require.Contains(t, page, "Outcomes are not enabled in this worker")
}

func TestLanes(t *testing.T) {
	lanes := &memLanes{lanes: []console.Lane{
		{LaneKey: console.LaneKey{Plugin: "github", PluginID: "pl-1"}},
		{LaneKey: console.LaneKey{Plugin: "github", PluginID: "pl-2"}},
		{LaneKey: console.LaneKey{Plugin: "slack", PluginID: "pl-3"}},
	}}
	e := setup(t, envOpts{lanes: lanes})
	c := e.client(t, "bearer")
	type lanesBody struct {
		Lanes []console.Lane `json:"lanes"`
	}
	paused := func(b lanesBody) []string {
		var out []string
		for _, l := range b.Lanes {
			if l.Paused {
				out = append(out, l.PluginID)
			}
		}
		return out
	}
	for _, tc := range []struct {
		name, path string
		body       any
		code       int
		paused     []string
	}{
		{"pause one", "/api/v1/lanes/pause", map[string]any{"plugin": "github", "plugin_id": "pl-2", "until": "2h", "reason": "provider outage"}, 200, []string{"pl-2"}},
		{"pause a plugin", "/api/v1/lanes/pause", map[string]any{"plugin": "slack"}, 200, []string{"pl-2", "pl-3"}},
		{"resume", "/api/v1/lanes/resume", map[string]any{"plugin": "github", "plugin_id": "pl-2"}, 200, []string{"pl-3"}},
		{"no plugin", "/api/v1/lanes/pause", map[string]any{"until": "2h"}, 400, []string{"pl-3"}},
		{"until in the past", "/api/v1/lanes/pause", map[string]any{"plugin": "github", "until": "2000-01-01T00:00:00Z"}, 400, []string{"pl-3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := c.do("POST", tc.path, tc.body, nil)
			require.Equal(t, tc.code, code, body)
			var b lanesBody
			c.getJSON("/api/v1/lanes", &b)
			require.Equal(t, tc.paused, paused(b))
		})
	}
	ls, _ := lanes.List(t.Context())
	require.Equal(t, "console", ls[2].SetBy)

	off := setup(t, envOpts{})
	oc := off.client(t, "bearer")
	for _, r := range [][2]string{{"GET", "/api/v1/lanes"}, {"POST", "/api/v1/lanes/pause"}, {"POST", "/api/v1/lanes/resume"}} {
		code, body := oc.do(r[0], r[1], map[string]any{"plugin": "github"}, nil)
		require.Equal(t, http.StatusServiceUnavailable, code, r[1])
		require.Contains(t, body, "not enabled")
	}
	_, page := off.client(t, "cookie").do("GET", "/ui/lanes", nil, nil)
	require.Contains(t, page, "Lanes are not enabled in this worker")
}

func TestActionsCatalog(t *testing.T) {
	cat := map[string]any{"plugins": []any{map[string]any{"slug": "demo", "name": "Demo <b>", "actions": []any{
		map[string]any{"handler": "demo#go", "label": "Go", "config_schema": map[string]any{"type": "object"}}}}}}
	e := setup(t, envOpts{actions: func() any { return cat }})
	var got map[string]any
	e.client(t, "bearer").getJSON("/api/v1/actions", &got)
	b, _ := json.Marshal(cat)
	require.JSONEq(t, string(b), mustJSON(t, got))
	_, page := e.client(t, "cookie").do("GET", "/ui/actions", nil, nil)
	require.Contains(t, page, "demo#go")
	require.Contains(t, page, "Demo &lt;b&gt;")
	require.Contains(t, page, `&#34;type&#34;: &#34;object&#34;`)
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func TestHeadersAndEscaping(t *testing.T) {
	e := setup(t, envOpts{})
	xss := `{"specversion":"1.0","id":"<script>window.__pwned=1</script>","type":"x","data":{"a":"<img src=x onerror=\"window.__pwned=1\">"}}`
	seqs := e.publish(t, []spec{{handler: "github#create_issue", reason: wire.ReasonPanic, deadAt: e.now, ceID: "<script>window.__pwned=1</script>", body: []byte(xss)}})
	c := e.client(t, "cookie")
	for _, path := range []string{"/ui/", "/ui/dead-letters", "/ui/dead-letters/" + strconv.FormatUint(seqs[0], 10), "/api/v1/dead-letters", "/ui/login"} {
		req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
		resp, err := c.hc.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		h := resp.Header
		csp := h.Get("Content-Security-Policy")
		require.Contains(t, csp, "default-src 'none'", path)
		require.Contains(t, csp, "frame-ancestors 'none'", path)
		require.NotContains(t, csp, "unsafe-inline", path)
		require.Equal(t, "DENY", h.Get("X-Frame-Options"), path)
		require.Equal(t, "nosniff", h.Get("X-Content-Type-Options"), path)
		require.Equal(t, "same-origin", h.Get("Referrer-Policy"), path)
		require.Equal(t, "no-store", h.Get("Cache-Control"), path)
		if strings.HasPrefix(path, "/api/") {
			require.Equal(t, "application/json; charset=utf-8", h.Get("Content-Type"))
		} else {
			require.Equal(t, "text/html; charset=utf-8", h.Get("Content-Type"))
		}
	}
	for _, path := range []string{"/ui/dead-letters", "/ui/dead-letters/" + strconv.FormatUint(seqs[0], 10)} {
		_, page := c.do("GET", path, nil, nil)
		require.NotContains(t, page, "<script")
		require.NotContains(t, page, "<img")
		require.Contains(t, page, "&lt;script&gt;window.__pwned=1&lt;/script&gt;", path)
		require.NotContains(t, page, " style=", "the CSP forbids inline styles")
	}
	_, page := c.do("GET", "/ui/dead-letters/"+strconv.FormatUint(seqs[0], 10), nil, nil)
	// encoding/json spells < as \u003c inside the redacted body.
	require.Contains(t, page, `\u003cimg src=x onerror=`)
}
