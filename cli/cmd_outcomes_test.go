package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/cli"
	"github.com/aweber-imbi/imbi-worker/internal/outcomes"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// publishOutcome stores one outcome event as the worker does.
func (e *toolEnv) publishOutcome(t *testing.T, ev outcomes.Event) {
	t.Helper()
	h, err := wire.ParseHandler(ev.Data.Handler)
	subj := wire.DefaultOutcomesPrefix + "." + wire.InvalidToken
	if err == nil {
		subj = wire.DefaultOutcomesPrefix + "." + h.Plugin + "." + h.Action
	}
	b, err := json.Marshal(ev)
	require.NoError(t, err)
	m := nats.NewMsg(subj)
	m.Header.Set(wire.HeaderContentType, wire.ContentTypeCE)
	m.Header.Set(wire.HeaderMsgID, ev.ID)
	m.Data = b
	_, err = e.js.PublishMsg(context.Background(), m)
	require.NoError(t, err)
}

// seedOutcomes stores outcomes from..from+n-1: i%3 == 0 → github#create_issue
// succeeded (project checkout), 1 → http#request retrying (project
// billing), 2 → github#close_issue dead_lettered with an error holding
// terminal escapes. Event i is at base + i minutes.
func (e *toolEnv) seedOutcomes(t *testing.T, from, n int, base time.Time) {
	t.Helper()
	for i := from; i < from+n; i++ {
		d := outcomes.Data{ActionID: "d-" + strconv.Itoa(i) + ".0", Attempt: 1, DurationMS: int64(i), Worker: "w-1",
			Context: outcomes.Context{ProjectID: "p-1", ProjectSlug: "checkout"}}
		switch i % 3 {
		case 0:
			d.Handler, d.Status = "github#create_issue", wire.OutcomeSucceeded
		case 1:
			next := base.Add(time.Hour)
			d.Handler, d.Status, d.Reason, d.Error, d.NextAttemptAt = "http#request", wire.OutcomeRetrying, wire.ReasonTimeout, "slow", &next
			d.Context = outcomes.Context{ProjectID: "p-2", ProjectSlug: "billing"}
		default:
			d.Handler, d.Status, d.Reason = "github#close_issue", wire.OutcomeDeadLettered, wire.ReasonActionFailed
			d.Error = "boom \x1b[2J\x1b]52;c;aGk=\x07 \u202e"
			d.DeadLetter = &outcomes.DeadLetter{Stream: wire.DefaultDLQStream, Seq: uint64(i)}
		}
		e.publishOutcome(t, outcomes.Event{SpecVersion: "1.0", Type: wire.OutcomeEventType, Source: "/imbi-worker/w-1",
			ID: d.ActionID + ".1", Subject: d.Handler, Time: base.Add(time.Duration(i) * time.Minute),
			DataContentType: wire.ContentTypeJSON, Data: d})
	}
}

func TestOutcomesTailFilters(t *testing.T) {
	t.Parallel()
	e := newToolEnv(t)
	base := time.Now().UTC().Add(-10 * time.Hour).Truncate(time.Minute)
	e.seedOutcomes(t, 0, 300, base)

	tests := []struct {
		args  []string
		want  int
		first string // action id of the first (oldest) line
	}{
		{nil, 20, "d-280.0"},
		{[]string{"--limit", "1000"}, 300, "d-0.0"},
		{[]string{"--handler", "github", "--limit", "1000"}, 200, "d-0.0"},
		{[]string{"--handler", "github#close_issue", "--limit", "5"}, 5, "d-287.0"},
		{[]string{"--status", "retrying", "--limit", "1000"}, 100, "d-1.0"},
		{[]string{"--project", "billing", "--limit", "1000"}, 100, "d-1.0"},
		{[]string{"--project", "p-1", "--status", "succeeded", "--limit", "1000"}, 100, "d-0.0"},
		{[]string{"--since", base.Add(290 * time.Minute).Format(time.RFC3339)}, 10, "d-290.0"},
		{[]string{"--since", base.Add(100 * time.Minute).Format(time.RFC3339), "--handler", "http#request"}, 67, "d-100.0"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, _, err := e.runTool(t, "", append([]string{"outcomes", "tail", "--json"}, tc.args...)...)
			require.NoError(t, err)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			require.Len(t, lines, tc.want)
			var prev time.Time
			for i, l := range lines {
				var ev outcomes.Event
				require.NoError(t, json.Unmarshal([]byte(l), &ev))
				if i == 0 {
					require.Equal(t, tc.first, ev.Data.ActionID)
				}
				require.False(t, ev.Time.Before(prev), "oldest first")
				prev = ev.Time
			}
		})
	}
	_, _, err := e.runTool(t, "", "outcomes", "tail", "--status", "bogus")
	require.ErrorContains(t, err, "status")
	_, _, err = e.runTool(t, "", "outcomes", "tail", "--handler", "a.>")
	require.ErrorContains(t, err, "handler")
}

// Text output escapes what a message could use against a terminal.
func TestOutcomesTailTextIsTerminalSafe(t *testing.T) {
	t.Parallel()
	e := newToolEnv(t)
	e.seedOutcomes(t, 0, 3, time.Now().UTC().Add(-time.Hour))
	out, _, err := e.runTool(t, "", "outcomes", "tail")
	require.NoError(t, err)
	require.Len(t, strings.Split(strings.TrimSpace(out), "\n"), 3)
	require.NotContains(t, out, "\x1b")
	require.NotContains(t, out, "\x07")
	require.NotContains(t, out, "\u202e")
	require.Contains(t, out, `boom \x1b[2J\x1b]52;c;aGk=\x07 \u202e`)
	require.Contains(t, out, "dead_lettered(action_failed)  github#close_issue  attempt 1")
	require.Contains(t, out, "retrying(timeout)  http#request")
	require.Contains(t, out, "dlq IMBI_ACTIONS_DLQ#2")
}

// syncBuf is a bytes.Buffer safe to read while the command writes.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestOutcomesTailFollow(t *testing.T) {
	t.Parallel()
	e := newToolEnv(t)
	base := time.Now().UTC().Add(-time.Hour)
	e.seedOutcomes(t, 0, 3, base)
	cmd := cli.NewRootCmd()
	var out syncBuf
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs([]string{"outcomes", "tail", "--follow", "--json", "--handler", "http#request", "--data-dir", e.dataDir})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	require.Eventually(t, func() bool { return strings.Count(out.String(), "\n") == 1 }, 10*time.Second, 10*time.Millisecond)
	e.seedOutcomes(t, 3, 6, base) // two more http#request (i = 4, 7)
	require.Eventually(t, func() bool { return strings.Count(out.String(), "\n") == 3 }, 10*time.Second, 10*time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err, "an interrupt ends --follow cleanly")
	case <-time.After(10 * time.Second):
		t.Fatal("--follow did not stop")
	}
	require.Equal(t, 3, strings.Count(out.String(), `"handler":"http#request"`))
}
