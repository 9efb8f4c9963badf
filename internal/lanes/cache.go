package lanes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Cache mirrors the bucket's lanes through a KV watch, so a message's
// lane check is one atomic load and, only while some lane is paused, a
// map lookup. Every replica watches, so a pause set by one is honoured by
// all within the watch's latency.
type Cache struct {
	snap    atomic.Pointer[snapshot]
	watcher jetstream.KeyWatcher
	done    chan struct{}
	log     *slog.Logger
	// onChange (optional) runs after every update with the snapshot's
	// lanes (metrics).
	onChange func([]State)
}

type snapshot struct {
	byLane map[Key]State
	byKV   map[string]Key
}

// Watch starts the cache: it returns once the bucket's current lanes are
// loaded, then follows updates until Stop (or ctx ends).
func (s *Store) Watch(ctx context.Context, log *slog.Logger, onChange func([]State)) (*Cache, error) {
	w, err := s.kv.Watch(ctx, "lane.>")
	if err != nil {
		return nil, wrap("watch", err)
	}
	c := &Cache{watcher: w, done: make(chan struct{}), log: log, onChange: onChange}
	c.snap.Store(&snapshot{byLane: map[Key]State{}, byKV: map[string]Key{}})
	timer := time.NewTimer(opTimeout)
	defer timer.Stop()
	for loaded := false; !loaded; {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, wrap("watch", fmt.Errorf("watcher closed"))
			}
			if e == nil {
				loaded = true
				continue
			}
			c.apply(e)
		case <-timer.C:
			_ = w.Stop()
			return nil, wrap("watch", context.DeadlineExceeded)
		}
	}
	go c.follow()
	return c, nil
}

func (c *Cache) follow() {
	defer close(c.done)
	for e := range c.watcher.Updates() {
		if e != nil {
			c.apply(e)
		}
	}
}

// Stop ends the watch.
func (c *Cache) Stop() {
	_ = c.watcher.Stop()
	<-c.done
}

// apply folds one bucket entry into a new snapshot.
func (c *Cache) apply(e jetstream.KeyValueEntry) {
	old := c.snap.Load()
	next := &snapshot{byLane: make(map[Key]State, len(old.byLane)+1), byKV: make(map[string]Key, len(old.byKV)+1)}
	for k, v := range old.byLane {
		next.byLane[k] = v
	}
	for k, v := range old.byKV {
		next.byKV[k] = v
	}
	if prev, ok := next.byKV[e.Key()]; ok {
		delete(next.byLane, prev)
		delete(next.byKV, e.Key())
	}
	if e.Operation() == jetstream.KeyValuePut {
		var st State
		if err := json.Unmarshal(e.Value(), &st); err != nil || st.Plugin == "" {
			if c.log != nil {
				c.log.Warn("lanes: ignoring an unreadable lane entry", "key", e.Key())
			}
		} else {
			next.byLane[st.Key] = st
			next.byKV[e.Key()] = st.Key
		}
	}
	c.snap.Store(next)
	if c.onChange != nil {
		c.onChange(c.states())
	}
}

func (c *Cache) states() []State {
	m := c.snap.Load().byLane
	out := make([]State, 0, len(m))
	for _, st := range m {
		out = append(out, st)
	}
	return out
}

// Paused reports whether the lane of (plugin, pluginID) is paused at now:
// its own pause or the plugin's (PluginID ""). When both hold, the one
// that ends later wins (zero PausedUntil: never by itself).
func (c *Cache) Paused(plugin, pluginID string, now time.Time) (State, bool) {
	m := c.snap.Load().byLane
	if len(m) == 0 {
		return State{}, false
	}
	st, ok := m[Key{Plugin: plugin, PluginID: pluginID}]
	ok = ok && st.PausedAt(now)
	if pluginID != "" {
		if all, ok2 := m[Key{Plugin: plugin}]; ok2 && all.PausedAt(now) {
			if !ok || all.PausedUntil.IsZero() || (!st.PausedUntil.IsZero() && all.PausedUntil.After(st.PausedUntil)) {
				st, ok = all, true
			}
		}
	}
	return st, ok
}

// Deferral counts. Key defer.<stream>.<stream seq>; value "<count>
// <the message's stream time in ns>", so a recreated stream's reused
// sequence numbers never inherit an old count. Written with a per-key
// TTL (the bucket allows it), so counts of finished messages expire.

func deferralKey(stream string, seq uint64) string {
	return "defer." + token(stream) + "." + strconv.FormatUint(seq, 10)
}

// Deferrals is how many deliveries of the message (stream, seq, stored at
// stored) were deferrals, not attempts; 0 when none is recorded.
func (s *Store) Deferrals(ctx context.Context, stream string, seq uint64, stored time.Time) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	e, err := s.kv.Get(ctx, deferralKey(stream, seq))
	if err != nil {
		if isNotFound(err) {
			return 0, nil
		}
		return 0, wrap("deferrals", err)
	}
	n, ts, ok := strings.Cut(string(e.Value()), " ")
	if !ok || ts != strconv.FormatInt(stored.UnixNano(), 10) {
		return 0, nil
	}
	count, err := strconv.Atoi(n)
	if err != nil || count < 0 {
		return 0, nil
	}
	return count, nil
}

// SetDeferrals records n deferrals of the message, kept for ttl.
func (s *Store) SetDeferrals(ctx context.Context, stream string, seq uint64, stored time.Time, n int, ttl time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	m := nats.NewMsg("$KV." + s.bucket + "." + deferralKey(stream, seq))
	m.Data = []byte(strconv.Itoa(n) + " " + strconv.FormatInt(stored.UnixNano(), 10))
	_, err := s.js.PublishMsg(ctx, m, jetstream.WithMsgTTL(ttl))
	return wrap("set deferrals", err)
}

func isNotFound(err error) bool {
	return errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted)
}
