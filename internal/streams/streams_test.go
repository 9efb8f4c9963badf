package streams

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// startJS starts an embedded server on dir and connects to it; both are
// closed when the test ends (or before, by the caller).
func startJS(t *testing.T, dir string) (*Embedded, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	srv, err := StartEmbedded(EmbeddedConfig{DataDir: dir})
	require.NoError(t, err)
	t.Cleanup(srv.Shutdown)
	nc, err := nats.Connect(srv.URL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	return srv, nc, js
}

func TestApplyIsIdempotentAndPersists(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv, nc, js := startJS(t, dir)
	require.Contains(t, srv.URL(), "127.0.0.1")
	ctx := context.Background()
	c := DefaultConfig()
	c.FilterSubjects = []string{"imbi.actions.github.>"}
	_, err := Apply(ctx, js, c)
	require.NoError(t, err)
	p, err := Apply(ctx, js, c)
	require.NoError(t, err, "second apply changes nothing")
	ci, err := p.Consumer.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, "imbi.actions.github.>", ci.Config.FilterSubject)
	_, err = js.Publish(ctx, "imbi.actions.github.create_issue", []byte("x"))
	require.NoError(t, err)
	nc.Close()
	srv.Shutdown()

	// The file store survives a restart of the embedded server.
	_, _, js = startJS(t, dir)
	s, err := js.Stream(ctx, c.Stream)
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(1), info.State.Msgs)
}

func TestApplyRejectsOverlappingPools(t *testing.T) {
	t.Parallel()
	_, _, js := startJS(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Apply(ctx, js, DefaultConfig())
	require.NoError(t, err)
	// A second pool on the same subjects with another consumer name: a
	// work-queue stream refuses overlapping consumers.
	other := DefaultConfig()
	other.Consumer = "github-pool"
	other.FilterSubjects = []string{"imbi.actions.github.>"}
	_, err = Apply(ctx, js, other)
	require.Error(t, err)
}

func TestValidate(t *testing.T) {
	t.Parallel()
	c := DefaultConfig()
	require.NoError(t, c.Validate(5, 16, 3))
	require.NoError(t, c.Validate(1000, 16, 1), "MaxDeliver -1: no server cap")
	c.MaxDeliver = 10
	require.ErrorContains(t, c.Validate(10, 16, 1), "MaxDeliver")
	require.NoError(t, c.Validate(9, 16, 1))
	c.MaxDeliver = -1
	require.NoError(t, c.Validate(5, 512, 4))
	require.ErrorContains(t, c.Validate(5, 512, 5), "MaxAckPending")
}

func TestEmbeddedNeedsDataDir(t *testing.T) {
	t.Parallel()
	_, err := StartEmbedded(EmbeddedConfig{})
	require.Error(t, err)
}

// The outcome stream (v1.1 §C) is provisioned with the others: limits
// retention, 7 days by default or as configured, and absent when off.
func TestApplyOutcomeStream(t *testing.T) {
	t.Parallel()
	_, _, js := startJS(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	for _, tc := range []struct {
		name   string
		maxAge time.Duration
		want   time.Duration
	}{
		{"default", 0, 7 * 24 * time.Hour},
		{"configured", 36 * time.Hour, 36 * time.Hour},
	} {
		c := DefaultConfig()
		c.OutcomesMaxAge = tc.maxAge
		c.SetDefaults()
		p, err := Apply(ctx, js, c)
		require.NoError(t, err, tc.name)
		require.NotNil(t, p.Outcomes, tc.name)
		info, err := p.Outcomes.Info(ctx)
		require.NoError(t, err, tc.name)
		require.Equal(t, "IMBI_OUTCOMES", info.Config.Name, tc.name)
		require.Equal(t, []string{"imbi.outcomes.>"}, info.Config.Subjects, tc.name)
		require.Equal(t, jetstream.LimitsPolicy, info.Config.Retention, tc.name)
		require.Equal(t, tc.want, info.Config.MaxAge, tc.name)
		require.Equal(t, c.DuplicateWindow, info.Config.Duplicates, "the work stream's duplicate window")
	}

	off := DefaultConfig()
	off.Outcomes, off.OutcomesStream, off.OutcomesPrefix = false, "OTHER_OUTCOMES", "other.outcomes"
	p, err := Apply(ctx, js, off)
	require.NoError(t, err)
	require.Nil(t, p.Outcomes)
	_, err = js.Stream(ctx, "OTHER_OUTCOMES")
	require.ErrorIs(t, err, jetstream.ErrStreamNotFound)
}

// TestApplyMaxMsgSize: the work stream refuses a message above its
// MaxMsgSize (security issue 12 item 4), so a publisher learns at once
// that its event is too big; a message at the limit is stored.
func TestApplyMaxMsgSize(t *testing.T) {
	t.Parallel()
	_, _, js := startJS(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name    string
		limit   int32 // 0: the default
		body    int
		refused bool
	}{
		{name: "default, at the event limit", body: DefaultMaxEventBytes},
		{name: "default, above the stream limit", body: int(DefaultMaxMsgSize) + 1, refused: true},
		{name: "1 MiB limit, 1 MiB less headers", limit: 1 << 20, body: 1<<20 - 1024},
		{name: "1 MiB limit, 1 MiB and a byte", limit: 1 << 20, body: 1<<20 + 1, refused: true},
	} {
		c := DefaultConfig()
		c.MaxMsgSize = tc.limit
		p, err := Apply(ctx, js, c)
		require.NoError(t, err, tc.name)
		info, err := p.Stream.Info(ctx)
		require.NoError(t, err)
		want := tc.limit
		if want == 0 {
			want = DefaultMaxMsgSize
		}
		require.Equal(t, want, info.Config.MaxMsgSize, tc.name)
		_, err = js.Publish(ctx, "imbi.actions.x.y", make([]byte, tc.body))
		if tc.refused {
			require.Error(t, err, tc.name)
		} else {
			require.NoError(t, err, tc.name)
		}
	}
}
