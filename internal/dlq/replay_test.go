package dlq_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/dlq"
	"github.com/aweber-imbi/imbi-worker/wire"
)

func workMsgs(t *testing.T, e *env) []*nats.Msg {
	t.Helper()
	ctx := context.Background()
	info, err := e.work.Info(ctx)
	require.NoError(t, err)
	var out []*nats.Msg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		raw, err := e.work.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		m := nats.NewMsg(raw.Subject)
		m.Header, m.Data = raw.Header, raw.Data
		out = append(out, m)
	}
	return out
}

func TestReplayRepublishesOriginalAndDeletesAfterAck(t *testing.T) {
	t.Parallel()
	e := setup(t)
	spec := letterSpec{handler: "http#request", reason: wire.ReasonMaxAttempts, lastReason: wire.ReasonTimeout,
		deadAt: baseTime, ceID: "d-9.1", extra: map[string]string{"X-Custom": "kept"}}
	seqs := e.publishLetters(t, []letterSpec{spec})
	ctx := context.Background()
	l, err := e.store.Get(ctx, seqs[0])
	require.NoError(t, err)

	r, err := e.store.Replay(ctx, l, false)
	require.NoError(t, err)
	require.True(t, r.Deleted)
	require.Equal(t, "d-9.1.replay.1", r.MsgID)
	require.Equal(t, 1, r.Replays)

	_, err = e.store.Get(ctx, seqs[0])
	require.ErrorIs(t, err, dlq.ErrNotFound, "deleted once the publish was acked")

	msgs := workMsgs(t, e)
	require.Len(t, msgs, 1)
	got := msgs[0]
	require.Equal(t, "imbi.actions.http.request", got.Subject)
	require.Equal(t, l.Data, got.Data, "body byte for byte")
	require.Equal(t, "d-9.1.replay.1", got.Header.Get(wire.HeaderMsgID))
	require.Equal(t, wire.ContentTypeCE, got.Header.Get(wire.HeaderContentType))
	require.Equal(t, "kept", got.Header.Get("X-Custom"))
	require.NotEmpty(t, got.Header.Get(wire.HeaderTraceparent))
	for k := range got.Header {
		require.False(t, strings.HasPrefix(strings.ToLower(k), "imbi-dlq-"), "no dead-letter header survives: %s", k)
	}

	// The worker dead-letters it again: the replayed message's headers
	// (Nats-Msg-Id d-9.1.replay.1 included) plus fresh Imbi-Dlq-* headers.
	// The next replay is number 2.
	again := deadLetterMsg(spec)
	again.Header.Set(wire.HeaderMsgID, got.Header.Get(wire.HeaderMsgID))
	ack, err := e.js.PublishMsg(ctx, again)
	require.NoError(t, err)
	l2, err := e.store.Get(ctx, ack.Sequence)
	require.NoError(t, err)
	require.False(t, ack.Duplicate, "a distinct Nats-Msg-Id per dead letter of one event")
	require.Equal(t, 1, l2.Replays)
	r2, err := e.store.Replay(ctx, l2, false)
	require.NoError(t, err)
	require.Equal(t, "d-9.1.replay.2", r2.MsgID)
	require.Equal(t, 2, r2.Replays)
}

func TestReplayNeverDeletesWhenTheServerSaysDuplicate(t *testing.T) {
	t.Parallel()
	e := setup(t)
	seqs := e.publishLetters(t, []letterSpec{{handler: "http#request", reason: wire.ReasonPanic, deadAt: baseTime, ceID: "d-3.0"}})
	ctx := context.Background()
	// Something already used the first replay id inside the dedup window.
	pre := nats.NewMsg("imbi.actions.http.request")
	pre.Header.Set(wire.HeaderMsgID, "d-3.0.replay.1")
	pre.Data = []byte("{}")
	_, err := e.js.PublishMsg(ctx, pre)
	require.NoError(t, err)

	l, err := e.store.Get(ctx, seqs[0])
	require.NoError(t, err)
	r, err := e.store.Replay(ctx, l, false)
	require.NoError(t, err)
	require.Equal(t, "d-3.0.replay.2", r.MsgID)
	require.Len(t, workMsgs(t, e), 2, "the letter really reached the work stream")
}

func TestReplayRefusesLettersItCannotRoute(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	for name, edit := range map[string]func(*nats.Msg){
		"no original subject": func(m *nats.Msg) { m.Header.Del(wire.DLQOriginalSubject) },
		"dlq loop":            func(m *nats.Msg) { m.Header.Set(wire.DLQOriginalSubject, "imbi.dlq.actions.http.request") },
	} {
		m := deadLetterMsg(letterSpec{handler: "http#request", reason: wire.ReasonPanic, deadAt: baseTime, ceID: name})
		edit(m)
		ack, err := e.js.PublishMsg(ctx, m)
		require.NoError(t, err)
		l, err := e.store.Get(ctx, ack.Sequence)
		require.NoError(t, err)
		_, err = e.store.Replay(ctx, l, false)
		require.ErrorIs(t, err, dlq.ErrNotReplayable, name)
		_, err = e.store.Get(ctx, ack.Sequence)
		require.NoError(t, err, "%s: still there", name)
	}
	require.Empty(t, workMsgs(t, e))
}

func TestReplayAllDryRunRateAndProgress(t *testing.T) {
	t.Parallel()
	e := setup(t)
	specs := thousandSpecs()[:35]
	e.publishLetters(t, specs)
	ctx := context.Background()
	f := dlq.Filter{Reasons: []string{"invalid_config"}} // 5 of 35

	dry, err := e.store.ReplayAll(ctx, f, dlq.ReplayOptions{DryRun: true})
	require.NoError(t, err)
	require.Equal(t, 5, dry.Matched)
	require.Equal(t, 5, dry.Replayed)
	require.Empty(t, workMsgs(t, e), "dry run publishes nothing")
	all, err := e.store.List(ctx, dlq.Filter{})
	require.NoError(t, err)
	require.Len(t, all, 35, "dry run deletes nothing")

	var mu sync.Mutex
	var progress [][2]int
	start := time.Now()
	sum, err := e.store.ReplayAll(ctx, f, dlq.ReplayOptions{Rate: 20, Progress: func(done, total int) {
		mu.Lock()
		defer mu.Unlock()
		progress = append(progress, [2]int{done, total})
	}})
	elapsed := time.Since(start)
	require.NoError(t, err)
	require.Equal(t, 5, sum.Replayed)
	require.Zero(t, sum.Failed)
	require.GreaterOrEqual(t, elapsed, 4*50*time.Millisecond-10*time.Millisecond, "20/s: 5 letters need ≥ 200 ms")
	require.Equal(t, [][2]int{{1, 5}, {2, 5}, {3, 5}, {4, 5}, {5, 5}}, progress)
	require.Len(t, workMsgs(t, e), 5)
	left, err := e.store.List(ctx, f)
	require.NoError(t, err)
	require.Empty(t, left)
}
