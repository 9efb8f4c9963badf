package outcomes_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/console"
	"github.com/aweber-imbi/imbi-worker/internal/outcomes"
	"github.com/aweber-imbi/imbi-worker/internal/streams"
	"github.com/aweber-imbi/imbi-worker/internal/streams/streamstest"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// Recent reads back from the last sequence over several windows, newest
// first, with the handler as subject filter and the other filters, the
// limit, since and the scan bound applied.
func TestReaderRecent(t *testing.T) {
	t.Parallel()
	env := streamstest.Start(t, streams.DefaultConfig())
	base := time.Now().UTC().Add(-48 * time.Hour).Truncate(time.Second)
	const n = 2500
	for i := range n {
		handler, status := "github#create_issue", wire.OutcomeSucceeded
		if i%5 == 0 {
			handler, status = "http#request", wire.OutcomeRetrying
		}
		ev := outcomes.Event{SpecVersion: "1.0", Type: wire.OutcomeEventType, Source: "/imbi-worker/w", ID: "a-" + strconv.Itoa(i) + ".1",
			Subject: handler, Time: base.Add(time.Duration(i) * time.Minute), DataContentType: wire.ContentTypeJSON,
			Data: outcomes.Data{ActionID: "a-" + strconv.Itoa(i), Handler: handler, Status: status, Attempt: 1, Worker: "w",
				Context: outcomes.Context{ProjectSlug: "p" + strconv.Itoa(i%2)}}}
		h, _ := wire.ParseHandler(handler)
		b, _ := json.Marshal(ev)
		m := nats.NewMsg("imbi.outcomes." + h.Plugin + "." + h.Action)
		m.Header.Set(wire.HeaderMsgID, ev.ID)
		m.Data = b
		_, err := env.JS.PublishMsgAsync(m)
		require.NoError(t, err)
	}
	<-env.JS.PublishAsyncComplete()
	r := outcomes.NewReader(env.JS, env.Config.OutcomesStream, env.Config.OutcomesPrefix)
	ctx := context.Background()

	tests := []struct {
		name   string
		f      outcomes.Filter
		scan   int
		want   int
		newest int // action index of the first result
	}{
		{"default limit", outcomes.Filter{}, 0, outcomes.DefaultLimit, 2499},
		{"max limit over windows", outcomes.Filter{Limit: 1000}, 0, 1000, 2499},
		{"limit capped", outcomes.Filter{Limit: 5000}, 0, outcomes.MaxLimit, 2499},
		{"handler subject", outcomes.Filter{Handler: "http#request", Limit: 1000}, 0, 500, 2495},
		{"plugin subject", outcomes.Filter{Handler: "http", Limit: 1000}, 0, 500, 2495},
		{"status and project", outcomes.Filter{Status: "succeeded", Project: "p1", Limit: 1000}, 0, 1000, 2499},
		{"since", outcomes.Filter{Since: base.Add(2400 * time.Minute), Limit: 1000}, 0, 100, 2499},
		{"scan bound", outcomes.Filter{Status: "retrying", Limit: 1000}, 1000, 200, 2495},
		{"nothing", outcomes.Filter{Handler: "nope#x"}, 0, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r.Scan = outcomes.DefaultScan
			if tc.scan > 0 {
				r.Scan = tc.scan
			}
			got, err := r.Recent(ctx, tc.f)
			require.NoError(t, err)
			require.Len(t, got, tc.want)
			if tc.want == 0 {
				return
			}
			require.Equal(t, "a-"+strconv.Itoa(tc.newest), got[0].Data.ActionID)
			for i := 1; i < len(got); i++ {
				require.Greater(t, got[i-1].Seq, got[i].Seq, "newest first")
				require.True(t, tc.f.Match(&got[i].Event))
			}
		})
	}
	// The console's port, on the same stream.
	outs, err := outcomes.ConsoleReader{R: r}.Recent(ctx, console.OutcomeFilter{Handler: "http", Status: "retrying", Limit: 3})
	require.NoError(t, err)
	require.Len(t, outs, 3)
	require.Equal(t, "a-2495.1", outs[0].ID)
	require.Equal(t, "http#request", outs[0].Handler)
}
