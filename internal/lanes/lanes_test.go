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

// TestCacheWatchConsumer: the cache's consumer is left to the server when
// the cache stops (the worker's role may not delete consumers): it still
// exists, with an inactive threshold. A consumer lost under the cache is
// replaced, and the cache keeps following from where it was.
func TestCacheWatchConsumer(t *testing.T) {
	t.Parallel()
	env := streamstest.Start(t, streams.Config{})
	ctx := context.Background()
	s := lanes.NewStore(env.JS, env.Provisioned.Lanes)
	require.NoError(t, s.Pause(ctx, lanes.PauseRequest{Lane: lanes.Key{Plugin: "before"}, By: "ops"}))
	cache, err := s.Watch(ctx, nil, nil)
	require.NoError(t, err)
	_, ok := cache.Paused("before", "", time.Now())
	require.True(t, ok, "loaded before Watch returns")
	stream, err := env.JS.Stream(ctx, "KV_"+env.Provisioned.Lanes.Bucket())
	require.NoError(t, err)
	names := func() []string {
		var out []string
		for n := range stream.ConsumerNames(ctx).Name() {
			out = append(out, n)
		}
		return out
	}

	// Lost: deleted under it. A new consumer follows on.
	first := names()
	require.Len(t, first, 1)
	require.NoError(t, stream.DeleteConsumer(ctx, first[0]))
	require.NoError(t, s.Pause(ctx, lanes.PauseRequest{Lane: lanes.Key{Plugin: "after"}, By: "ops"}))
	require.Eventually(t, func() bool {
		_, ok := cache.Paused("after", "", time.Now())
		return ok
	}, 20*time.Second, 20*time.Millisecond, "the cache follows after losing its consumer")
	_, ok = cache.Paused("before", "", time.Now())
	require.True(t, ok, "kept what it had")

	// Stopped: the consumer stays for the server to remove.
	second := names()
	require.Len(t, second, 1)
	require.NotEqual(t, first, second)
	cache.Stop()
	info, err := stream.PushConsumer(ctx, second[0])
	require.NoError(t, err, "Stop does not delete the consumer")
	require.Positive(t, info.CachedInfo().Config.InactiveThreshold)
}
