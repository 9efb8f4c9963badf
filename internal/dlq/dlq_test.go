package dlq_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/dlq"
	"github.com/aweber-imbi/imbi-worker/wire"
)

func TestListFiltersOnThousandLetters(t *testing.T) {
	t.Parallel()
	e := setup(t)
	specs := thousandSpecs()
	seqs := e.publishLetters(t, specs)
	require.Len(t, seqs, 1000)
	seqOf := func(i int) uint64 { return seqs[i] }

	tests := []struct {
		name   string
		filter dlq.Filter
		want   func(i int, s letterSpec) bool
	}{
		{"all", dlq.Filter{}, func(int, letterSpec) bool { return true }},
		{"reason", dlq.Filter{Reasons: []string{"panic"}},
			func(_ int, s letterSpec) bool { return s.reason == wire.ReasonPanic }},
		{"two reasons", dlq.Filter{Reasons: []string{"panic", "invalid_config"}},
			func(_ int, s letterSpec) bool {
				return s.reason == wire.ReasonPanic || s.reason == wire.ReasonInvalidConfig
			}},
		{"last reason", dlq.Filter{Reasons: []string{"timeout"}},
			func(_ int, s letterSpec) bool { return s.lastReason == wire.ReasonTimeout }},
		{"handler", dlq.Filter{Handlers: []string{"github#create_issue"}},
			func(_ int, s letterSpec) bool { return s.handler == "github#create_issue" }},
		{"legacy handler", dlq.Filter{Handlers: []string{"github:close_issue"}},
			func(_ int, s letterSpec) bool { return s.handler == "github#close_issue" }},
		{"plugin", dlq.Filter{Handlers: []string{"github"}},
			func(_ int, s letterSpec) bool { return strings.HasPrefix(s.handler, "github#") }},
		{"plugin and one of its handlers", dlq.Filter{Handlers: []string{"github#create_issue", "github", "github"}},
			func(_ int, s letterSpec) bool { return strings.HasPrefix(s.handler, "github#") }},
		{"invalid", dlq.Filter{Handlers: []string{"_invalid"}},
			func(_ int, s letterSpec) bool { return s.handler == wire.InvalidToken }},
		{"since", dlq.Filter{Since: baseTime.Add(900 * time.Minute)},
			func(i int, _ letterSpec) bool { return i >= 900 }},
		{"until", dlq.Filter{Until: baseTime.Add(10 * time.Minute)},
			func(i int, _ letterSpec) bool { return i < 10 }},
		{"since until", dlq.Filter{Since: baseTime.Add(100 * time.Minute), Until: baseTime.Add(200 * time.Minute)},
			func(i int, _ letterSpec) bool { return i >= 100 && i < 200 }},
		{"seq", dlq.Filter{Seq: seqOf(500)},
			func(i int, _ letterSpec) bool { return i == 500 }},
		{"from seq", dlq.Filter{FromSeq: seqOf(990)},
			func(i int, _ letterSpec) bool { return i >= 990 }},
		{"to seq", dlq.Filter{ToSeq: seqOf(4)},
			func(i int, _ letterSpec) bool { return i <= 4 }},
		{"seq range", dlq.Filter{FromSeq: seqOf(10), ToSeq: seqOf(19)},
			func(i int, _ letterSpec) bool { return i >= 10 && i <= 19 }},
		{"limit", dlq.Filter{Reasons: []string{"rate_limited"}, Limit: 3},
			func(i int, s letterSpec) bool {
				return s.reason == wire.ReasonRateLimited && countBefore(i, wire.ReasonRateLimited) < 3
			}},
		{"combined", dlq.Filter{Handlers: []string{"http#request"}, Reasons: []string{"max_attempts"}, Since: baseTime.Add(300 * time.Minute)},
			func(i int, s letterSpec) bool {
				return s.handler == "http#request" && s.reason == wire.ReasonMaxAttempts && i >= 300
			}},
		{"nothing", dlq.Filter{Handlers: []string{"nope#nothing"}}, func(int, letterSpec) bool { return false }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			got, err := e.store.List(ctx, tc.filter)
			require.NoError(t, err)
			require.Equal(t, specIDs(specs, tc.want), nilIfEmpty(ids(got)))
		})
	}
}

func countBefore(i int, r wire.Reason) int {
	n := 0
	for j := range i {
		if testReasons[j%len(testReasons)] == r {
			n++
		}
	}
	return n
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func TestLetterDecodesHeaders(t *testing.T) {
	t.Parallel()
	e := setup(t)
	dead := baseTime.Add(time.Hour)
	seqs := e.publishLetters(t, []letterSpec{{handler: "http#request", reason: wire.ReasonMaxAttempts, lastReason: wire.ReasonUnsettled, deadAt: dead, ceID: "d-1.2"}})
	ctx := context.Background()
	l, err := e.store.Get(ctx, seqs[0])
	require.NoError(t, err)
	require.Equal(t, "http#request", l.Handler)
	require.Equal(t, "imbi.dlq.actions.http.request", l.Subject)
	require.Equal(t, "max_attempts", l.Reason)
	require.Equal(t, "unsettled", l.LastReason)
	require.Equal(t, 5, l.Attempts)
	require.Equal(t, "imbi.actions.http.request", l.OriginalSubject)
	require.EqualValues(t, 77, l.OriginalSeq)
	require.Equal(t, dead, l.DeadAt)
	require.Equal(t, dead.Add(-time.Minute), l.FirstReceived)
	require.Equal(t, "test-worker", l.Worker)
	require.Equal(t, "d-1.2", l.EventID)
	require.False(t, l.Stored.IsZero())

	_, err = e.store.Get(ctx, 999)
	require.ErrorIs(t, err, dlq.ErrNotFound)
}

func TestFilterValidate(t *testing.T) {
	t.Parallel()
	bad := map[string]dlq.Filter{
		"unknown reason":  {Reasons: []string{"exploded"}},
		"bad handler":     {Handlers: []string{"Git Hub"}},
		"until <= since":  {Since: baseTime, Until: baseTime},
		"to before from":  {FromSeq: 10, ToSeq: 9},
		"negative limit":  {Limit: -1},
		"handler garbage": {Handlers: []string{"a#b#c"}},
	}
	for name, f := range bad {
		require.Error(t, f.Validate(), name)
	}
	good := []dlq.Filter{{}, {Reasons: []string{"unsettled", "timeout"}}, {Handlers: []string{"_invalid", "github", "github#x", "github:x"}}, {FromSeq: 3, ToSeq: 3}}
	for _, f := range good {
		require.NoError(t, f.Validate(), "%+v", f)
	}
}

func TestStatsGroupsByReasonAndHandler(t *testing.T) {
	t.Parallel()
	e := setup(t)
	specs := []letterSpec{
		{handler: "github#create_issue", reason: wire.ReasonInvalidConfig, deadAt: baseTime, ceID: "a.0"},
		{handler: "github#create_issue", reason: wire.ReasonInvalidConfig, deadAt: baseTime.Add(time.Hour), ceID: "b.0"},
		{handler: "http#request", reason: wire.ReasonMaxAttempts, lastReason: wire.ReasonTimeout, deadAt: baseTime.Add(2 * time.Hour), ceID: "c.0"},
		{handler: wire.InvalidToken, reason: wire.ReasonInvalidEvent, deadAt: baseTime.Add(3 * time.Hour), body: []byte("not json")},
	}
	e.publishLetters(t, specs)
	st, err := e.store.Stats(context.Background(), dlq.Filter{})
	require.NoError(t, err)
	require.Equal(t, 4, st.Total)
	require.Equal(t, []dlq.Group{
		{Key: "invalid_config", Count: 2, Oldest: baseTime, Newest: baseTime.Add(time.Hour)},
		{Key: "invalid_event", Count: 1, Oldest: baseTime.Add(3 * time.Hour), Newest: baseTime.Add(3 * time.Hour)},
		{Key: "max_attempts/timeout", Count: 1, Oldest: baseTime.Add(2 * time.Hour), Newest: baseTime.Add(2 * time.Hour)},
	}, st.ByReason)
	require.Equal(t, "github#create_issue", st.ByHandler[0].Key)
	require.Equal(t, 2, st.ByHandler[0].Count)
	require.Len(t, st.ByHandler, 3)
	require.Equal(t, "invalid_config github#create_issue", st.ByReasonHandler[0].Key)

	only, err := e.store.Stats(context.Background(), dlq.Filter{Handlers: []string{"http"}})
	require.NoError(t, err)
	require.Equal(t, 1, only.Total)
}

func TestPurge(t *testing.T) {
	t.Parallel()
	e := setup(t)
	specs := thousandSpecs()[:70]
	e.publishLetters(t, specs)
	ctx := context.Background()

	n, err := e.store.Purge(ctx, dlq.Filter{Reasons: []string{"panic"}})
	require.NoError(t, err)
	require.Equal(t, 10, n)
	left, err := e.store.List(ctx, dlq.Filter{})
	require.NoError(t, err)
	require.Len(t, left, 60)
	for _, l := range left {
		require.NotEqual(t, "panic", l.Reason)
	}

	n, err = e.store.Purge(ctx, dlq.Filter{})
	require.NoError(t, err)
	require.Equal(t, 60, n)
	info, err := e.dead.Info(ctx)
	require.NoError(t, err)
	require.Zero(t, info.State.Msgs)
}

func TestEachStopsWhenLettersVanish(t *testing.T) {
	t.Parallel()
	e := setup(t)
	seqs := e.publishLetters(t, thousandSpecs()[:20])
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	visited := 0
	err := e.store.Each(ctx, dlq.Filter{}, func(l dlq.Letter) error {
		visited++
		if visited == 1 {
			// Everything after the first disappears mid-walk.
			for _, s := range seqs[1:] {
				require.NoError(t, e.store.Delete(ctx, s))
			}
		}
		return nil
	})
	require.NoError(t, err)
	require.GreaterOrEqual(t, visited, 1)
}
