package worker

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/aweber-imbi/imbi-worker/wire"
)

// Outcomes of imbi_worker.messages.settled.
const (
	outcomeAck        = "ack"
	outcomeRetry      = "retry"
	outcomeDeadLetter = "dead_letter"
	outcomeDuplicate  = "duplicate"
	// outcomeRequeued: nak'ed without counting as a failure (shutdown).
	outcomeRequeued = "requeued"
	// outcomeDeferred: nak'ed with a delay, not a failure (lane pause).
	outcomeDeferred = "deferred"
	// outcomeAbandoned: left unacked for redelivery (never recorded).
	outcomeAbandoned = "abandoned"
)

// unknownHandler is the metric label of handlers that did not resolve,
// so garbage in messages cannot blow up label cardinality.
const unknownHandler = "_unknown"

type metrics struct {
	// attrs caches attribute sets by their values: building a set sorts
	// and allocates, and the label values are few (bounded handlers,
	// fixed outcomes and reasons).
	mu    sync.RWMutex
	attrs map[attrKey]metric.MeasurementOption

	settled   metric.Int64Counter
	duration  metric.Float64Histogram
	retries   metric.Int64Counter
	dead      metric.Int64Counter
	inflight  metric.Int64UpDownCounter
	timeouts  metric.Int64Counter
	abandoned metric.Int64Counter
	// Lanes (v1.1 §B).
	laneDeferrals metric.Int64Counter
	meter         metric.Meter
}

// attrKey is up to two key/value pairs of metric labels.
type attrKey [4]string

func newMetrics(mp metric.MeterProvider) (*metrics, error) {
	m := mp.Meter("github.com/aweber-imbi/imbi-worker/internal/worker")
	var (
		out = metrics{meter: m}
		err error
	)
	if out.settled, err = m.Int64Counter("imbi_worker.messages.settled", metric.WithUnit("{message}"),
		metric.WithDescription("Messages settled, by handler and outcome (ack, retry, dead_letter, duplicate).")); err != nil {
		return nil, err
	}
	if out.duration, err = m.Float64Histogram("imbi_worker.action.duration", metric.WithUnit("s"),
		metric.WithDescription("Action run time, by handler and outcome.")); err != nil {
		return nil, err
	}
	if out.retries, err = m.Int64Counter("imbi_worker.retries", metric.WithUnit("{message}"),
		metric.WithDescription("Retryable failures nak'ed for redelivery, by handler and reason.")); err != nil {
		return nil, err
	}
	if out.dead, err = m.Int64Counter("imbi_worker.dead_letters", metric.WithUnit("{message}"),
		metric.WithDescription("Messages dead-lettered, by reason and handler.")); err != nil {
		return nil, err
	}
	if out.inflight, err = m.Int64UpDownCounter("imbi_worker.inflight", metric.WithUnit("{message}"),
		metric.WithDescription("Actions running now.")); err != nil {
		return nil, err
	}
	if out.timeouts, err = m.Int64Counter("imbi_worker.action.timeouts", metric.WithUnit("{action}"),
		metric.WithDescription("Actions that exceeded their deadline, by handler.")); err != nil {
		return nil, err
	}
	if out.abandoned, err = m.Int64Counter("imbi_worker.action.abandoned", metric.WithUnit("{action}"),
		metric.WithDescription("Actions that ignored their deadline and were left running, by handler.")); err != nil {
		return nil, err
	}
	if out.laneDeferrals, err = m.Int64Counter("imbi_worker.lanes.deferred", metric.WithUnit("{message}"),
		metric.WithDescription("Messages deferred by a paused lane without running, by plugin.")); err != nil {
		return nil, err
	}
	return &out, nil
}

// with returns the cached option for the key/value pairs kv (at most two
// pairs). The lookup key is an array, not a joined string, so a hit
// allocates nothing.
func (m *metrics) with(kv ...string) metric.MeasurementOption {
	var key attrKey
	copy(key[:], kv)
	m.mu.RLock()
	o, ok := m.attrs[key]
	m.mu.RUnlock()
	if ok {
		return o
	}
	attrs := make([]attribute.KeyValue, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		attrs = append(attrs, attribute.String(kv[i], kv[i+1]))
	}
	o = metric.WithAttributeSet(attribute.NewSet(attrs...))
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.attrs == nil {
		m.attrs = map[attrKey]metric.MeasurementOption{}
	}
	m.attrs[key] = o
	return o
}

func (m *metrics) laneDeferred(ctx context.Context, plugin string) {
	m.laneDeferrals.Add(ctx, 1, m.with("plugin", plugin))
}

func (m *metrics) settle(ctx context.Context, handler, outcome string) {
	m.settled.Add(ctx, 1, m.with("handler", handler, "outcome", outcome))
}

func (m *metrics) retry(ctx context.Context, handler string, reason wire.Reason) {
	m.retries.Add(ctx, 1, m.with("handler", handler, "reason", string(reason)))
}

func (m *metrics) deadLetter(ctx context.Context, handler string, reason wire.Reason) {
	m.dead.Add(ctx, 1, m.with("reason", string(reason), "handler", handler))
}
