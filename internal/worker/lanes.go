package worker

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/aweber-imbi/imbi-worker/internal/dispatch"
	"github.com/aweber-imbi/imbi-worker/internal/lanes"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// Rate-limit lanes (wire-contract v1.1 §B, decision 0010). A rate-limited
// result is deferred (NakWithDelay) without using an attempt and pauses
// its lane in the imbi_lanes bucket; every replica's lane cache (a KV
// watch) then defers that lane's messages before they run. A deferral
// is recorded as the message's deferral count before the nak, so later
// deliveries compute attempt = deliveries − deferrals.

// laneStore is what the settler needs of the lanes bucket.
type laneStore interface {
	Deferrals(ctx context.Context, stream string, seq uint64, stored time.Time) (int, error)
	SetDeferrals(ctx context.Context, stream string, seq uint64, stored time.Time, n int, ttl time.Duration) error
	Pause(ctx context.Context, p lanes.PauseRequest) error
}

// lanePause returns the pause holding d's lane at now. One atomic load
// while no lane is paused.
func (w *Worker) lanePause(d *delivery, now time.Time) (lanes.State, bool) {
	if w.laneCache == nil || d.lane.Plugin == "" {
		return lanes.State{}, false
	}
	return w.laneCache.Paused(d.lane.Plugin, d.lane.PluginID, now)
}

// pausedDecision defers d for its lane's pause: the remaining time (at
// most LaneRecheck); its action does not run and no attempt is used.
func (w *Worker) pausedDecision(ctx context.Context, d *delivery, st lanes.State, now time.Time) Decision {
	wait := w.cfg.LaneRecheck
	until := "resumed"
	if !st.PausedUntil.IsZero() {
		wait = st.PausedUntil.Sub(now)
		until = st.PausedUntil.UTC().Format(time.RFC3339)
	}
	var reason wire.Reason
	if !st.Manual() {
		reason = wire.ReasonRateLimited // a rate limit's pause; an operator's has none
	}
	w.metrics.laneDeferred(ctx, d.lane.Plugin)
	return Decision{Kind: KindDefer, Reason: reason, Delay: w.settler.deferDelay(wait),
		ErrorText: dispatch.RedactText("lane "+st.String()+" paused until "+until+" by "+st.SetBy+": "+st.Reason, nil)}
}

// deferDelay is a deferral's nak delay for a wait: at most LaneRecheck,
// plus jitter (up to a tenth of it + 50 ms, at most 5 s) so a lane's
// messages do not all come back at once.
func (s *settler) deferDelay(wait time.Duration) time.Duration {
	wait = max(min(wait, s.cfg.LaneRecheck), 0)
	spread := min(wait/10, 5*time.Second) + 50*time.Millisecond
	return wait + rand.N(spread)
}

// decideRateLimited is a rate-limited result's decision: a deferral that
// pauses the lane until the retry-after, or a rate_limited dead letter
// once the message has waited RateLimitMaxWait since its first receipt
// (the stream's time of the message).
func (s *settler) decideRateLimited(d *delivery, dec Decision, res dispatch.Result) Decision {
	now := time.Now()
	if now.Sub(d.meta.Timestamp) >= s.cfg.RateLimitMaxWait {
		dec.Kind, dec.Reason = KindDeadLetter, wire.ReasonRateLimited
		dec.ErrorText = dispatch.RedactText("rate limited for longer than "+s.cfg.RateLimitMaxWait.String()+": "+res.ErrorText, nil)
		return dec
	}
	wait := res.RetryAfter
	if wait <= 0 {
		wait = backoff(s.cfg.BackoffBase, s.cfg.BackoffMax, d.deferred+1)
	}
	wait = min(wait, s.cfg.RateLimitMaxWait)
	dec.Kind, dec.Delay, dec.PauseUntil = KindDefer, s.deferDelay(wait), now.Add(wait)
	return dec
}

// deferralTTL is how long a deferral count is kept after its last write:
// longer than any gap between two deferrals of a live message.
func (s *settler) deferralTTL() time.Duration {
	return max(s.cfg.RateLimitMaxWait, 24*time.Hour) + 24*time.Hour
}

// earlierDeferrals is how many of the deliveries before this one were
// deferrals (v1.1 §B): none for a first delivery, else the lanes
// bucket's count, never more than the deliveries before this one. The
// intake subtracts it from the delivery count to get the attempt; a
// give-back at shutdown adds one to it.
func earlierDeferrals(ctx context.Context, store laneStore, meta *jetstream.MsgMetadata) (int, error) {
	if meta.NumDelivered <= 1 {
		return 0, nil
	}
	n, err := store.Deferrals(ctx, meta.Stream, meta.Sequence.Stream, meta.Timestamp)
	if err != nil {
		return 0, err
	}
	return min(n, int(meta.NumDelivered)-1), nil
}

// recordDeferral is a Defer's durable step: the deferral count, then the
// lane pause (a rate limit). A failed count write costs the message one
// attempt, never the message; a failed pause only means the lane's other
// messages find the limit themselves.
func (s *settler) recordDeferral(ctx context.Context, d *delivery, dec Decision) {
	if s.lanes == nil || d.meta == nil {
		return
	}
	if err := s.lanes.SetDeferrals(ctx, d.meta.Stream, d.meta.Sequence.Stream, d.meta.Timestamp, d.deferred+1, s.deferralTTL()); err != nil {
		d.logger().Warn("deferral count not stored; this delivery counts as an attempt", "error", err)
	}
	if !dec.PauseUntil.IsZero() && d.lane.Plugin != "" {
		err := s.lanes.Pause(ctx, lanes.PauseRequest{Lane: d.lane, Until: dec.PauseUntil, By: lanes.SetByWorker + " " + s.cfg.WorkerID,
			Reason: "rate limited by " + d.handler})
		if err != nil {
			d.logger().Warn("lane pause not stored", "lane", d.lane.String(), "error", err)
		}
	}
}

// startLanes starts the lane cache and the lane gauges.
func (w *Worker) startLanes(ctx context.Context) error {
	var gauges laneGauges
	c, err := w.lanes.Watch(ctx, w.log, gauges.set)
	if err != nil {
		return err
	}
	w.laneCache, w.settler.lanes = c, w.lanes
	if err := gauges.register(w.metrics.meter); err != nil {
		c.Stop()
		return fmt.Errorf("lane gauges: %w", err)
	}
	return nil
}

// laneGauges observes the cached lanes: lanes paused now, and how long the
// longest current pause has lasted, by plugin.
type laneGauges struct {
	mu     sync.Mutex
	states []lanes.State
}

func (g *laneGauges) set(s []lanes.State) {
	g.mu.Lock()
	g.states = s
	g.mu.Unlock()
}

func (g *laneGauges) register(m metric.Meter) error {
	paused, err := m.Int64ObservableGauge("imbi_worker.lanes.paused", metric.WithUnit("{lane}"),
		metric.WithDescription("Lanes paused now, by plugin (rate limits and operators)."))
	if err != nil {
		return err
	}
	pausedFor, err := m.Float64ObservableGauge("imbi_worker.lanes.paused_time", metric.WithUnit("s"),
		metric.WithDescription("How long the plugin's longest current lane pause has lasted, by plugin."))
	if err != nil {
		return err
	}
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		g.mu.Lock()
		states := g.states
		g.mu.Unlock()
		now := time.Now()
		count, longest := map[string]int64{}, map[string]float64{}
		for i := range states {
			st := &states[i]
			if !st.PausedAt(now) {
				continue
			}
			count[st.Plugin]++
			longest[st.Plugin] = max(longest[st.Plugin], now.Sub(st.SetAt).Seconds())
		}
		for p, n := range count {
			attrs := metric.WithAttributes(attribute.String("plugin", p))
			o.ObserveInt64(paused, n, attrs)
			o.ObserveFloat64(pausedFor, longest[p], attrs)
		}
		return nil
	}, paused, pausedFor)
	return err
}
