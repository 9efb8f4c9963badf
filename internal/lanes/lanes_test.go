package lanes_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/lanes"
	"github.com/aweber-imbi/imbi-worker/internal/streams"
	"github.com/aweber-imbi/imbi-worker/internal/streams/streamstest"
)

func TestStorePauseListResume(t *testing.T) {
	t.Parallel()
	env := streamstest.Start(t, streams.Config{})
	ctx := context.Background()
	s := lanes.NewStore(env.JS, env.Provisioned.Lanes)
	cache, err := s.Watch(ctx, nil, nil)
	require.NoError(t, err)
	t.Cleanup(cache.Stop)
	now := time.Now()

	gh := lanes.Key{Plugin: "github", PluginID: "4:abc:12"} // hashed key token
	require.NoError(t, s.Pause(ctx, lanes.PauseRequest{Lane: gh, Until: now.Add(time.Hour), Reason: "429", By: lanes.SetByWorker}))
	// A worker's shorter pause does not shorten it.
	require.NoError(t, s.Pause(ctx, lanes.PauseRequest{Lane: gh, Until: now.Add(time.Minute), Reason: "429", By: lanes.SetByWorker}))
	// An operator pauses all of slack, until resumed.
	require.NoError(t, s.Pause(ctx, lanes.PauseRequest{Lane: lanes.Key{Plugin: "slack"}, Reason: "outage", By: "ops"}))
	// A worker's pause never replaces an operator's.
	require.NoError(t, s.Pause(ctx, lanes.PauseRequest{Lane: lanes.Key{Plugin: "slack"}, Until: now.Add(time.Second), By: lanes.SetByWorker}))
	require.ErrorIs(t, s.Pause(ctx, lanes.PauseRequest{Lane: gh, Until: now.Add(-time.Second), By: "ops"}), lanes.ErrPastUntil)
	require.ErrorIs(t, s.Pause(ctx, lanes.PauseRequest{By: "ops"}), lanes.ErrNoPlugin)

	list, err := s.List(ctx)
	require.NoError(t, err)
	require.Len(t, list, 2)
	require.Equal(t, gh, list[0].Key)
	require.WithinDuration(t, now.Add(time.Hour), list[0].PausedUntil, time.Second)
	require.Equal(t, lanes.Key{Plugin: "slack"}, list[1].Key)
	require.True(t, list[1].PausedUntil.IsZero())
	require.Equal(t, "ops", list[1].SetBy)

	// Every replica's cache sees it: the lane itself, the plugin-wide pause
	// for any credential set, nothing for other lanes.
	require.Eventually(t, func() bool {
		_, a := cache.Paused("github", "4:abc:12", time.Now())
		_, b := cache.Paused("slack", "any", time.Now())
		return a && b
	}, 5*time.Second, 10*time.Millisecond)
	_, other := cache.Paused("github", "other-set", time.Now())
	require.False(t, other)
	_, later := cache.Paused("github", "4:abc:12", now.Add(2*time.Hour))
	require.False(t, later, "a timed pause ends by itself")

	require.NoError(t, s.Resume(ctx, lanes.Key{Plugin: "github"}, "ops")) // every lane of the plugin
	require.NoError(t, s.Resume(ctx, lanes.Key{Plugin: "slack"}, "ops"))
	require.NoError(t, s.Resume(ctx, lanes.Key{Plugin: "nothing"}, "ops"))
	list, err = s.List(ctx)
	require.NoError(t, err)
	require.Empty(t, list)
	require.Eventually(t, func() bool {
		_, a := cache.Paused("github", "4:abc:12", time.Now())
		_, b := cache.Paused("slack", "any", time.Now())
		return !a && !b
	}, 5*time.Second, 10*time.Millisecond)
}

func TestDeferralCounts(t *testing.T) {
	t.Parallel()
	env := streamstest.Start(t, streams.Config{})
	ctx := context.Background()
	s := lanes.NewStore(env.JS, env.Provisioned.Lanes)
	stored := time.Now()
	n, err := s.Deferrals(ctx, "IMBI_ACTIONS", 7, stored)
	require.NoError(t, err)
	require.Zero(t, n)
	require.NoError(t, s.SetDeferrals(ctx, "IMBI_ACTIONS", 7, stored, 3, time.Hour))
	n, err = s.Deferrals(ctx, "IMBI_ACTIONS", 7, stored)
	require.NoError(t, err)
	require.Equal(t, 3, n)
	// Same sequence, another message (a recreated stream): no count.
	n, err = s.Deferrals(ctx, "IMBI_ACTIONS", 7, stored.Add(time.Second))
	require.NoError(t, err)
	require.Zero(t, n)
	// The count expires with its TTL.
	require.NoError(t, s.SetDeferrals(ctx, "IMBI_ACTIONS", 8, stored, 1, time.Second))
	require.Eventually(t, func() bool {
		n, err := s.Deferrals(ctx, "IMBI_ACTIONS", 8, stored)
		return err == nil && n == 0
	}, 10*time.Second, 100*time.Millisecond)
}
