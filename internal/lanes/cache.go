package lanes

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Cache mirrors the bucket's lanes through a watch of its stream, so a
// message's lane check is one atomic load and, only while some lane is
// paused, a map lookup. Every replica watches, so a pause set by one is
// honoured by all within the watch's latency.
//
// The watch is an ordered push consumer of its own (nats.go's KV watch
// deletes its consumer when it stops, and the worker's NATS role may not
// delete consumers, deploy/nats/permissions.conf): an ephemeral consumer
// with an inactive threshold, so the server removes it once the Cache
// stops listening. A gap in its sequence, a missed heartbeat or a deleted
// consumer starts a new one after the last entry applied, and the old one
// is left to the server the same way.
type Cache struct {
	snap     atomic.Pointer[snapshot]
	js       jetstream.JetStream
	stream   string // KV_<bucket>
	prefix   string // $KV.<bucket>.
	msgs     chan genMsg
	resets   chan int
	stop     chan struct{}
	stopOnce sync.Once
	loaded   chan struct{}
	done     chan struct{}
	log      *slog.Logger
	// onChange (optional) runs after every update with the snapshot's
	// lanes (metrics).
	onChange func([]State)

	// Owned by follow.
	gen       int
	cons      jetstream.ConsumeContext
	nextCons  uint64 // the consumer sequence expected next
	lastSeq   uint64 // the stream sequence of the last entry applied
	isLoaded  bool
	retryWait time.Duration
}

// genMsg is a delivered message and the generation of the consumer that
// delivered it (messages of a replaced consumer are dropped).
type genMsg struct {
	gen int
	msg jetstream.Msg
}

// The watch consumer's settings.
const (
	watchHeartbeat = 5 * time.Second
	// watchInactive: how long the server keeps a consumer nobody listens
	// to (a stopped or replaced watch).
	watchInactive = 30 * time.Second
	// watchBuffer bounds the delivered messages not yet applied.
	watchBuffer = 256
	// watchRetryMax caps the wait between attempts to start a consumer.
	watchRetryMax = 10 * time.Second
)

type snapshot struct {
	byLane map[Key]State
	byKV   map[string]Key
}

// Watch starts the cache: it returns once the bucket's current lanes are
// loaded, then follows updates until Stop. ctx bounds the start.
func (s *Store) Watch(ctx context.Context, log *slog.Logger, onChange func([]State)) (*Cache, error) {
	c := &Cache{js: s.js, stream: "KV_" + s.bucket, prefix: "$KV." + s.bucket + ".",
		msgs: make(chan genMsg, watchBuffer), resets: make(chan int, 1), stop: make(chan struct{}),
		loaded: make(chan struct{}), done: make(chan struct{}), log: log, onChange: onChange}
	c.snap.Store(&snapshot{byLane: map[Key]State{}, byKV: map[string]Key{}})
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if err := c.consume(ctx); err != nil {
		return nil, wrap("watch", err)
	}
	go c.follow()
	select {
	case <-c.loaded:
		return c, nil
	case <-ctx.Done():
		c.Stop()
		return nil, wrap("watch", ctx.Err())
	}
}

// Stop ends the watch. Its consumer is left to the server (inactive
// threshold): no request is made.
func (c *Cache) Stop() {
	c.stopOnce.Do(func() { close(c.stop) })
	<-c.done
}

// consume starts a new consumer generation: from the entry after the last
// one applied, or (first) every lane's latest entry.
func (c *Cache) consume(ctx context.Context) error {
	if c.cons != nil {
		c.cons.Stop() // unsubscribes; nothing asks the server to delete
		c.cons = nil
	}
	c.gen++
	gen := c.gen
	cfg := jetstream.ConsumerConfig{
		DeliverSubject:    c.js.Conn().NewInbox(),
		FilterSubject:     c.prefix + "lane.>",
		DeliverPolicy:     jetstream.DeliverLastPerSubjectPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		MaxDeliver:        1,
		FlowControl:       true,
		IdleHeartbeat:     watchHeartbeat,
		InactiveThreshold: watchInactive,
		MemoryStorage:     true,
		Replicas:          1,
	}
	if c.lastSeq > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, c.lastSeq+1
	}
	cons, err := c.js.CreateOrUpdatePushConsumer(ctx, c.stream, cfg)
	if err != nil {
		return err
	}
	c.nextCons = 1
	if !c.isLoaded && cons.CachedInfo().NumPending == 0 {
		c.setLoaded()
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case c.msgs <- genMsg{gen: gen, msg: m}:
		case <-c.stop:
		}
	}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		if errors.Is(err, jetstream.ErrNoHeartbeat) || errors.Is(err, jetstream.ErrConsumerDeleted) {
			c.reset(gen)
		}
	}))
	if err != nil {
		return err
	}
	c.cons = cc
	return nil
}

func (c *Cache) setLoaded() {
	c.isLoaded = true
	close(c.loaded)
}

// reset asks follow for a new consumer in place of generation gen.
func (c *Cache) reset(gen int) {
	select {
	case c.resets <- gen:
	default:
	}
}

func (c *Cache) follow() {
	defer close(c.done)
	defer func() {
		if c.cons != nil {
			c.cons.Stop()
		}
	}()
	var retry <-chan time.Time
	for {
		select {
		case <-c.stop:
			return
		case gm := <-c.msgs:
			if gm.gen != c.gen || c.cons == nil {
				continue
			}
			meta, err := gm.msg.Metadata()
			if err != nil {
				continue
			}
			if meta.Sequence.Consumer != c.nextCons {
				retry = c.restart()
				continue
			}
			c.nextCons++
			c.lastSeq = meta.Sequence.Stream
			c.apply(c.entry(gm.msg))
			if !c.isLoaded && meta.NumPending == 0 {
				c.setLoaded()
			}
		case gen := <-c.resets:
			if gen == c.gen && c.cons != nil {
				retry = c.restart()
			}
		case <-retry:
			retry = c.restart()
		}
	}
}

// restart replaces the consumer; on failure it returns when to try again.
func (c *Cache) restart() <-chan time.Time {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	err := c.consume(ctx)
	if err == nil {
		c.retryWait = 0
		return nil
	}
	c.retryWait = min(max(2*c.retryWait, time.Second), watchRetryMax)
	if c.log != nil {
		c.log.Warn("lanes: restarting the lane watch failed; retrying", "error", err, "wait", c.retryWait)
	}
	return time.After(c.retryWait)
}

// entry is a KV entry of the bucket's stream message m.
type entry struct {
	key   string
	op    jetstream.KeyValueOp
	value []byte
}

func (c *Cache) entry(m jetstream.Msg) entry {
	e := entry{key: strings.TrimPrefix(m.Subject(), c.prefix), op: jetstream.KeyValuePut, value: m.Data()}
	h := m.Headers()
	switch op := h.Get("KV-Operation"); {
	case op == "DEL":
		e.op = jetstream.KeyValueDelete
	case op == "PURGE":
		e.op = jetstream.KeyValuePurge
	case op != "":
	case h.Get(jetstream.MarkerReasonHeader) == "Remove":
		e.op = jetstream.KeyValueDelete
	case h.Get(jetstream.MarkerReasonHeader) != "":
		e.op = jetstream.KeyValuePurge
	}
	return e
}

// apply folds one bucket entry into a new snapshot.
func (c *Cache) apply(e entry) {
	old := c.snap.Load()
	next := &snapshot{byLane: make(map[Key]State, len(old.byLane)+1), byKV: make(map[string]Key, len(old.byKV)+1)}
	for k, v := range old.byLane {
		next.byLane[k] = v
	}
	for k, v := range old.byKV {
		next.byKV[k] = v
	}
	if prev, ok := next.byKV[e.key]; ok {
		delete(next.byLane, prev)
		delete(next.byKV, e.key)
	}
	if e.op == jetstream.KeyValuePut {
		var st State
		if err := json.Unmarshal(e.value, &st); err != nil || st.Plugin == "" {
			if c.log != nil {
				c.log.Warn("lanes: ignoring an unreadable lane entry", "key", e.key)
			}
		} else {
			next.byLane[st.Key] = st
			next.byKV[e.key] = st.Key
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
