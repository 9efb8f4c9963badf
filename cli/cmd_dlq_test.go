package cli_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/wire"
)

const dlqPlanted = "Bearer planted-dlq-secret"

// seedDeadLetters publishes n letters the way the worker dead-letters:
// i%3 == 0 → http#request invalid_config, 1 → github#create_issue
// max_attempts/timeout, 2 → _invalid invalid_event. Letter i died at
// base + i minutes.
func (e *toolEnv) seedDeadLetters(t *testing.T, n int, base time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range n {
		var subj, work, reason, last string
		switch i % 3 {
		case 0:
			subj, work, reason = "http.request", "http.request", string(wire.ReasonInvalidConfig)
		case 1:
			subj, work, reason, last = "github.create_issue", "github.create_issue", string(wire.ReasonMaxAttempts), string(wire.ReasonTimeout)
		default:
			subj, work, reason = wire.InvalidToken, "http.request", string(wire.ReasonInvalidEvent)
		}
		m := nats.NewMsg(wire.DefaultDLQPrefix + "." + subj)
		id := "dlv-" + strconv.Itoa(i) + ".0"
		m.Header.Set(wire.HeaderContentType, wire.ContentTypeCE)
		m.Header.Set(wire.HeaderMsgID, id)
		m.Header.Set("Authorization", dlqPlanted) // a careless publisher's header
		m.Data = []byte(`{"specversion":"1.0","id":"` + id + `","type":"io.imbi.webhook.action.v1","source":"/imbi-gateway/webhooks/wh","subject":"http#request",` +
			`"data":{"event":{"metadata":{"headers":{"authorization":"` + dlqPlanted + `"}}}}}`)
		m.Header.Set(wire.DLQReason, reason)
		if last != "" {
			m.Header.Set(wire.DLQLastReason, last)
		}
		m.Header.Set(wire.DLQError, "it failed")
		m.Header.Set(wire.DLQAttempts, "1")
		m.Header.Set(wire.DLQOriginalSubject, wire.DefaultSubjectPrefix+"."+work)
		m.Header.Set(wire.DLQOriginalSeq, strconv.Itoa(i+1))
		m.Header.Set(wire.DLQDeadAt, base.Add(time.Duration(i)*time.Minute).Format(time.RFC3339Nano))
		m.Header.Set(wire.DLQWorker, "w-1")
		_, err := e.js.PublishMsgAsync(m)
		require.NoError(t, err)
	}
	select {
	case <-e.js.PublishAsyncComplete():
	case <-ctx.Done():
		t.Fatal("seeding timed out")
	}
}

func decodeJSON[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal([]byte(s), &v), s)
	return v
}

type letterJSON struct {
	Seq     uint64 `json:"seq"`
	Handler string `json:"handler"`
	Reason  string `json:"reason"`
	EventID string `json:"event_id"`
}

func TestDLQListFiltersAndStats(t *testing.T) {
	t.Parallel()
	e := newToolEnv(t)
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	e.seedDeadLetters(t, 1000, base)

	tests := []struct {
		args []string
		want int
	}{
		{nil, 1000},
		{[]string{"--reason", "invalid_config"}, 334},
		{[]string{"--reason", "timeout"}, 333},
		{[]string{"--reason", "invalid_config,invalid_event"}, 667},
		{[]string{"--handler", "github#create_issue"}, 333},
		{[]string{"--handler", "github"}, 333},
		{[]string{"--handler", "_invalid", "--handler", "http#request"}, 667},
		{[]string{"--since", "2026-11-01T10:00:00Z"}, 400},
		{[]string{"--until", "2026-11-01T00:10:00Z"}, 10},
		{[]string{"--seq", "7"}, 1},
		{[]string{"--from-seq", "991"}, 10},
		{[]string{"--from-seq", "10", "--to-seq", "19", "--reason", "invalid_config"}, 4}, // seq = i+1: i = 9, 12, 15, 18
		{[]string{"--limit", "25"}, 25},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, _, err := e.runTool(t, "", append([]string{"dlq", "list", "--json"}, tc.args...)...)
			require.NoError(t, err)
			require.Len(t, decodeJSON[[]letterJSON](t, out), tc.want)
		})
	}

	out, _, err := e.runTool(t, "", "dlq", "list", "--handler", "github#create_issue", "--limit", "2")
	require.NoError(t, err)
	require.Contains(t, out, "max_attempts/timeout")
	require.Contains(t, out, "2 dead letter(s)")
	require.NotContains(t, out, "planted")

	out, _, err = e.runTool(t, "", "dlq", "stats", "--json")
	require.NoError(t, err)
	st := decodeJSON[struct {
		Total    int `json:"total"`
		ByReason []struct {
			Key   string `json:"key"`
			Count int    `json:"count"`
		} `json:"by_reason"`
		ByHandler []struct {
			Key   string `json:"key"`
			Count int    `json:"count"`
		} `json:"by_handler"`
	}](t, out)
	require.Equal(t, 1000, st.Total)
	require.Equal(t, "invalid_config", st.ByReason[0].Key)
	require.Equal(t, 334, st.ByReason[0].Count)
	require.Len(t, st.ByHandler, 3)

	out, _, err = e.runTool(t, "", "dlq", "stats", "--reason", "invalid_event")
	require.NoError(t, err)
	require.Contains(t, out, "333 dead letter(s)")
	require.Contains(t, out, "BY HANDLER")

	_, _, err = e.runTool(t, "", "dlq", "list", "--reason", "exploded")
	require.ErrorContains(t, err, "unknown reason")
	_, _, err = e.runTool(t, "", "dlq", "list", "--since", "yesterday")
	require.ErrorContains(t, err, "--since")
}

func TestDLQShowNeverPrintsASecret(t *testing.T) {
	t.Parallel()
	e := newToolEnv(t)
	e.seedDeadLetters(t, 2, time.Now())
	for _, args := range [][]string{{"dlq", "show", "1"}, {"dlq", "show", "2", "--json"}} {
		out, _, err := e.runTool(t, "", args...)
		require.NoError(t, err)
		require.NotContains(t, out, "planted-dlq-secret")
		require.Contains(t, out, wire.Redacted)
		require.Contains(t, out, "dlv-")
	}
	_, _, err := e.runTool(t, "", "dlq", "show", "99")
	require.ErrorContains(t, err, "not found")
	_, _, err = e.runTool(t, "", "dlq", "show", "abc")
	require.Error(t, err)
}

func TestDLQReplayCommand(t *testing.T) {
	t.Parallel()
	e := newToolEnv(t)
	e.seedDeadLetters(t, 9, time.Now().Add(-time.Hour))

	_, _, err := e.runTool(t, "", "dlq", "replay")
	require.ErrorContains(t, err, "--all")

	out, errOut, err := e.runTool(t, "", "dlq", "replay", "--handler", "http#request", "--dry-run")
	require.NoError(t, err)
	require.Contains(t, out, "would replay 3 of 3")
	require.Empty(t, errOut, "no progress bar when stderr is not a terminal")
	require.Empty(t, e.workMsgs(t))

	out, _, err = e.runTool(t, "", "dlq", "replay", "--handler", "http#request", "--rate", "100", "--json")
	require.NoError(t, err)
	sum := decodeJSON[struct {
		Matched, Replayed, Failed int
	}](t, out)
	require.Equal(t, 3, sum.Replayed)

	msgs := e.workMsgs(t)
	require.Len(t, msgs, 3)
	for _, m := range msgs {
		require.Equal(t, "imbi.actions.http.request", m.Subject)
		require.True(t, strings.HasSuffix(m.Header.Get(wire.HeaderMsgID), ".0.replay.1"), m.Header.Get(wire.HeaderMsgID))
		require.Empty(t, m.Header.Get(wire.DLQReason))
	}
	out, _, err = e.runTool(t, "", "dlq", "list", "--json")
	require.NoError(t, err)
	require.Len(t, decodeJSON[[]letterJSON](t, out), 6)
}

// TestDLQConfirmationsIgnoreTheEnvironment: the dlq commands' one-off
// flags are command-line-only: IMBI_YES and IMBI_ALL must not confirm a
// purge or a mass replay, and IMBI_REASON must not filter.
func TestDLQConfirmationsIgnoreTheEnvironment(t *testing.T) {
	e := newToolEnv(t)
	e.seedDeadLetters(t, 3, time.Now())
	t.Setenv("IMBI_YES", "true")
	t.Setenv("IMBI_ALL", "true")
	t.Setenv("IMBI_REASON", "no_such_reason")
	_, _, err := e.runTool(t, "", "dlq", "purge", "--all")
	require.ErrorContains(t, err, "rerun with --yes")
	_, _, err = e.runTool(t, "", "dlq", "purge", "--yes")
	require.ErrorContains(t, err, "--all")
	_, _, err = e.runTool(t, "", "dlq", "replay")
	require.ErrorContains(t, err, "--all")
	out, _, err := e.runTool(t, "", "dlq", "list", "--json")
	require.NoError(t, err)
	require.Len(t, decodeJSON[[]letterJSON](t, out), 3)
}

func TestDLQPurgeNeedsYes(t *testing.T) {
	t.Parallel()
	e := newToolEnv(t)
	e.seedDeadLetters(t, 30, time.Now())

	_, _, err := e.runTool(t, "", "dlq", "purge", "--reason", "invalid_event")
	require.ErrorContains(t, err, "would delete 10")
	_, _, err = e.runTool(t, "", "dlq", "purge", "--yes")
	require.ErrorContains(t, err, "--all")
	out, _, err := e.runTool(t, "", "dlq", "list", "--json")
	require.NoError(t, err)
	require.Len(t, decodeJSON[[]letterJSON](t, out), 30, "nothing deleted so far")

	out, _, err = e.runTool(t, "", "dlq", "purge", "--reason", "invalid_event", "--yes")
	require.NoError(t, err)
	require.Contains(t, out, "purged 10")
	out, _, err = e.runTool(t, "", "dlq", "purge", "--all", "--yes", "--json")
	require.NoError(t, err)
	require.JSONEq(t, `{"purged": 20}`, out)
	out, _, err = e.runTool(t, "", "dlq", "list", "--json")
	require.NoError(t, err)
	require.JSONEq(t, `[]`, out)
}
