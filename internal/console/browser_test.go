package console_test

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/console"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// chromium finds Debian's chromium (scripts/chromium.sh installs it). In
// CI a missing browser fails the test instead of skipping it.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM_BIN"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (scripts/chromium.sh installs it); CI runs the browser test")
	}
	t.Skip("chromium is not installed; run scripts/chromium.sh")
	return ""
}

// shot writes docs/images/<name>.png when UPDATE_SCREENSHOTS=1, so a test
// run never dirties the tree by itself.
func shot(name string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		if os.Getenv("UPDATE_SCREENSHOTS") != "1" {
			return nil
		}
		var buf []byte
		if err := chromedp.FullScreenshot(&buf, 100).Do(ctx); err != nil { // quality 100: PNG
			return err
		}
		return os.WriteFile(filepath.Join("..", "..", "docs", "images", name+".png"), buf, 0o644)
	})
}

// outcomeFeeder stands in for the worker: it consumes the work stream
// with the worker's durable consumer and reports a succeeded outcome for
// every message, into the console's OutcomeReader.
func outcomeFeeder(t *testing.T, e *env, outs *memOutcomes) {
	cc, err := e.nats.Provisioned.Consumer.Consume(func(m jetstream.Msg) {
		var ev struct {
			ID      string `json:"id"`
			Subject string `json:"subject"`
		}
		_ = json.Unmarshal(m.Data(), &ev)
		outs.add(console.Outcome{ID: ev.ID + ".1", ActionID: ev.ID, Handler: ev.Subject, Status: console.OutcomeSucceeded,
			Attempt: 1, DurationMS: 12, Time: time.Now().UTC(), Context: console.OutcomeContext{ProjectSlug: "checkout"}})
		_ = m.Ack()
	})
	require.NoError(t, err)
	t.Cleanup(cc.Stop)
}

func TestBrowserConsole(t *testing.T) {
	bin := chromium(t)
	outs := &memOutcomes{}
	for i, st := range []string{"succeeded", "succeeded", "retrying", "dead_lettered", "succeeded", "deduplicated"} {
		outs.add(console.Outcome{ID: "seed-" + strconv.Itoa(i), ActionID: "seed-" + strconv.Itoa(i), Status: st, Attempt: 1,
			Handler: []string{"github#create_issue", "slack#post", "http#request"}[i%3], Time: time.Now().UTC()})
	}
	lanes := &memLanes{lanes: []console.Lane{
		{LaneKey: console.LaneKey{Plugin: "github", PluginID: "pl-1"}},
		{LaneKey: console.LaneKey{Plugin: "slack", PluginID: "pl-2"}, Paused: true, Reason: "rate limited", SetBy: "worker", PausedUntil: time.Now().Add(time.Hour).UTC()},
	}}
	e := setup(t, envOpts{outcomes: outs, lanes: lanes})
	outcomeFeeder(t, e, outs)

	specs := manySpecs(40, e.now)
	for i := range specs { // spread over the day for the chart
		specs[i].deadAt = e.now.Add(-time.Duration(40-i) * 35 * time.Minute)
	}
	const xssID = `<script>window.__pwned=1</script>`
	xss := spec{handler: "github#create_issue", reason: wire.ReasonActionFailed, deadAt: e.now, ceID: xssID,
		body: []byte(`{"specversion":"1.0","id":"` + strings.ReplaceAll(xssID, "/", `\/`) + `","type":"x","data":{"a":"<img src=x onerror=\"window.__pwned=1;alert(1)\">"}}`)}
	seqs := e.publish(t, append(specs, xss))
	xssSeq := seqs[len(seqs)-1]
	// The error header is shown as is (escaped) in the list and detail.
	msg := letterMsg(spec{handler: "http#request", reason: wire.ReasonActionFailed, deadAt: e.now, ceID: "img-err"})
	msg.Header.Set(wire.DLQError, `<img src=x onerror="window.__pwned=1;alert(1)">`)
	_, err := e.nats.JS.PublishMsg(t.Context(), msg)
	require.NoError(t, err)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox,
		chromedp.Headless, chromedp.DisableGPU, chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-dev-shm-usage", true))
	actx, acancel := chromedp.NewExecAllocator(t.Context(), opts...)
	defer acancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, tcancel := context.WithTimeout(ctx, 120*time.Second)
	defer tcancel()

	var (
		mu       sync.Mutex
		requests []string
		dialogs  []string
	)
	chromedp.ListenTarget(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			mu.Lock()
			requests = append(requests, ev.Request.URL)
			mu.Unlock()
		case *page.EventJavascriptDialogOpening:
			mu.Lock()
			dialogs = append(dialogs, ev.Message)
			mu.Unlock()
			go func() { _ = chromedp.Run(ctx, page.HandleJavaScriptDialog(false)) }()
		}
	})
	base := e.srv.URL

	var loc string
	// Log in: /ui/ sends an unauthenticated browser to the login page.
	require.NoError(t, chromedp.Run(ctx, network.Enable(),
		chromedp.Navigate(base+"/ui/"),
		chromedp.WaitVisible("#token", chromedp.ByQuery),
		chromedp.Location(&loc),
		shot("console-login"),
		chromedp.SendKeys("#token", testToken, chromedp.ByQuery),
		chromedp.Click("#login-submit", chromedp.ByQuery),
		chromedp.WaitVisible("#dlq-chart", chromedp.ByQuery),
		chromedp.WaitVisible("#outcome-chart", chromedp.ByQuery),
	))
	require.Equal(t, base+"/ui/login", loc)
	var bars int
	require.NoError(t, chromedp.Run(ctx,
		chromedp.Evaluate(`document.querySelectorAll("#dlq-chart rect").length`, &bars), shot("console-overview")))
	require.Greater(t, bars, 5, "the overview draws the dead letters as bars")

	// The dead letters the test stored are listed, newest first.
	var rows int
	var summary string
	require.NoError(t, chromedp.Run(ctx,
		chromedp.Navigate(base+"/ui/dead-letters"),
		chromedp.WaitVisible("#letters", chromedp.ByQuery),
		chromedp.Text("#summary", &summary, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll("#letters tbody tr").length`, &rows),
		shot("console-dead-letters"),
	))
	require.True(t, strings.HasPrefix(summary, "42 matching"), summary)
	require.Equal(t, 42, rows)

	// Filter by reason.
	var reasonsShown []string
	require.NoError(t, chromedp.Run(ctx,
		chromedp.SetValue("#f-reason", "panic", chromedp.ByQuery),
		chromedp.Click("#f-apply", chromedp.ByQuery),
		chromedp.WaitVisible("#filter", chromedp.ByQuery),
		chromedp.Location(&loc),
		chromedp.Evaluate(`[...document.querySelectorAll("#letters tbody tr td:nth-child(3)")].map(td => td.textContent.trim())`, &reasonsShown),
	))
	require.Contains(t, loc, "reason=panic")
	want := 0
	for _, s := range specs {
		if s.reason == wire.ReasonPanic {
			want++
		}
	}
	require.Len(t, reasonsShown, want)
	for _, r := range reasonsShown {
		require.Equal(t, "panic", r)
	}

	// Replay one: it leaves the list, and its outcome appears.
	var target int
	for i, s := range specs {
		if s.reason == wire.ReasonPanic {
			target = i
		}
	}
	row := "#letter-" + strconv.FormatUint(seqs[target], 10)
	var notice string
	var stillThere bool
	require.NoError(t, chromedp.Run(ctx,
		chromedp.Click(row+" .replay-one", chromedp.ByQuery),
		chromedp.WaitVisible("#notice", chromedp.ByQuery),
		chromedp.Text("#notice", &notice, chromedp.ByQuery),
		chromedp.Location(&loc),
		chromedp.Evaluate(`document.querySelector("`+row+`") !== null`, &stillThere),
	))
	require.Contains(t, notice, "Replayed letter "+strconv.FormatUint(seqs[target], 10))
	require.Contains(t, loc, "reason=panic", "the filter survives the replay")
	require.False(t, stillThere)
	sel := `tr.outcome[data-action="` + specs[target].ceID + `"]`
	require.Eventually(t, func() bool {
		var n int
		err := chromedp.Run(ctx, chromedp.Navigate(base+"/ui/outcomes?"+url.Values{"status": {"succeeded"}}.Encode()),
			chromedp.WaitVisible("#outcomes", chromedp.ByQuery),
			chromedp.Evaluate(`document.querySelectorAll('`+sel+`').length`, &n))
		return err == nil && n == 1
	}, 20*time.Second, 200*time.Millisecond, "the replayed letter's outcome shows up")
	require.NoError(t, chromedp.Run(ctx, shot("console-outcomes")))

	// A letter full of markup renders as text: nothing runs.
	var pwned bool
	var eventID, errText string
	require.NoError(t, chromedp.Run(ctx,
		chromedp.Navigate(base+"/ui/dead-letters/"+strconv.FormatUint(xssSeq, 10)),
		chromedp.WaitVisible("#body", chromedp.ByQuery),
		chromedp.Text("#facts dd.mono", &eventID, chromedp.ByQuery),
		chromedp.Evaluate(`window.__pwned !== undefined`, &pwned),
	))
	require.Equal(t, xssID, eventID, "the markup is shown as text")
	require.False(t, pwned)
	require.NoError(t, chromedp.Run(ctx,
		chromedp.Navigate(base+"/ui/dead-letters?handler=http%23request"),
		chromedp.WaitVisible("#letters", chromedp.ByQuery),
		chromedp.Text(`#letters tbody tr:first-child td.err`, &errText, chromedp.ByQuery),
		chromedp.Evaluate(`window.__pwned !== undefined || document.querySelectorAll("#letters img").length > 0`, &pwned),
	))
	require.Equal(t, `<img src=x onerror="window.__pwned=1;alert(1)">`, errText)
	require.False(t, pwned)

	// Pause and resume a lane.
	var state string
	require.NoError(t, chromedp.Run(ctx,
		chromedp.Navigate(base+"/ui/lanes"),
		chromedp.WaitVisible("#lanes", chromedp.ByQuery),
		chromedp.SetValue("#lane-github-pl-1 input[name=until]", "2h", chromedp.ByQuery),
		chromedp.SetValue("#lane-github-pl-1 input[name=reason]", "provider incident", chromedp.ByQuery),
		chromedp.Click("#lane-github-pl-1 button.pause", chromedp.ByQuery),
		chromedp.WaitVisible("#notice", chromedp.ByQuery),
		chromedp.Text("#lane-github-pl-1 .state", &state, chromedp.ByQuery),
		shot("console-lanes"),
	))
	require.Equal(t, "paused", state)
	ls, _ := lanes.List(t.Context())
	require.True(t, ls[0].Paused)
	require.Equal(t, "provider incident", ls[0].Reason)
	require.NoError(t, chromedp.Run(ctx,
		chromedp.Click("#lane-github-pl-1 button.resume", chromedp.ByQuery),
		// The paused page had a notice too: wait for the new page's button.
		chromedp.WaitVisible("#lane-github-pl-1 button.pause", chromedp.ByQuery),
		chromedp.Text("#lane-github-pl-1 .state", &state, chromedp.ByQuery),
	))
	require.Equal(t, "running", state)
	ls, _ = lanes.List(t.Context())
	require.False(t, ls[0].Paused)

	// Bulk replay of a filter, with the dry-run count first and the job.
	var matched, jobState string
	require.NoError(t, chromedp.Run(ctx,
		chromedp.Navigate(base+"/ui/dead-letters?reason=rate_limited"),
		chromedp.WaitVisible("#bulk-replay", chromedp.ByQuery),
		chromedp.Click("#bulk-replay button", chromedp.ByQuery),
		chromedp.WaitVisible("#dry-run", chromedp.ByQuery),
		chromedp.Text("#matched", &matched, chromedp.ByQuery),
		chromedp.Click("#confirm-submit", chromedp.ByQuery),
		chromedp.WaitVisible("#job-state", chromedp.ByQuery),
	))
	wantRL := 0
	for _, s := range specs {
		if s.reason == wire.ReasonRateLimited {
			wantRL++
		}
	}
	require.Equal(t, strconv.Itoa(wantRL), matched)
	require.Eventually(t, func() bool {
		err := chromedp.Run(ctx, chromedp.Reload(), chromedp.WaitVisible("#job-state", chromedp.ByQuery), chromedp.Text("#job-state", &jobState, chromedp.ByQuery))
		return err == nil && jobState == console.JobDone
	}, 20*time.Second, 300*time.Millisecond)

	require.NoError(t, chromedp.Run(ctx, chromedp.Navigate(base+"/ui/actions"), chromedp.WaitVisible("main", chromedp.ByQuery)))

	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, dialogs, "no alert/confirm dialog opened")
	require.NotEmpty(t, requests)
	for _, r := range requests {
		u, err := url.Parse(r)
		require.NoError(t, err)
		if u.Scheme == "data" || u.Scheme == "about" {
			continue
		}
		require.Equal(t, "127.0.0.1", u.Hostname(), "request to a non-loopback host: %s", r)
	}
}
