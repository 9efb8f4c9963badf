package telemetry

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Consumer gauge names (OTel form; Prometheus shows them with dots as
// underscores and no unit suffix, since {message} is an annotation).
const (
	MetricConsumerPending     = "imbi_worker.consumer.pending"
	MetricConsumerRedelivered = "imbi_worker.consumer.redelivered"
	MetricConsumerAckPending  = "imbi_worker.consumer.ack_pending"
)

// ConsumerInfoSource is what the gauges sample: a jetstream.Consumer has
// this method (CachedInfo would be stale, so Info is asked every scrape).
type ConsumerInfoSource interface {
	ConsumerInfo(ctx context.Context) (*jetstream.ConsumerInfo, error)
}

// ConsumerInfoFunc adapts a function, e.g. a jetstream.Consumer's Info.
type ConsumerInfoFunc func(ctx context.Context) (*jetstream.ConsumerInfo, error)

// ConsumerInfo calls f.
func (f ConsumerInfoFunc) ConsumerInfo(ctx context.Context) (*jetstream.ConsumerInfo, error) {
	return f(ctx)
}

// DefaultConsumerInfoTimeout bounds one sample so a slow or partitioned
// server cannot hold up a Prometheus scrape.
const DefaultConsumerInfoTimeout = 2 * time.Second

// RegisterConsumerGauges adds the three consumer gauges to meter, sampled
// from src at every collection (every /metrics scrape). A failed sample
// reports nothing for that scrape rather than a stale or zero value, so a
// dashboard shows a gap, not a false "queue empty". Labels: stream,
// consumer. Unregister the returned registration when the consumer goes.
func RegisterConsumerGauges(meter metric.Meter, src ConsumerInfoSource, timeout time.Duration) (metric.Registration, error) {
	if timeout <= 0 {
		timeout = DefaultConsumerInfoTimeout
	}
	pending, err := meter.Int64ObservableGauge(MetricConsumerPending,
		metric.WithUnit("{message}"),
		metric.WithDescription("Messages in the stream not yet delivered to the consumer (JetStream NumPending)."))
	if err != nil {
		return nil, fmt.Errorf("telemetry: %s: %w", MetricConsumerPending, err)
	}
	redelivered, err := meter.Int64ObservableGauge(MetricConsumerRedelivered,
		metric.WithUnit("{message}"),
		metric.WithDescription("Messages delivered more than once and not yet acknowledged (JetStream NumRedelivered)."))
	if err != nil {
		return nil, fmt.Errorf("telemetry: %s: %w", MetricConsumerRedelivered, err)
	}
	ackPending, err := meter.Int64ObservableGauge(MetricConsumerAckPending,
		metric.WithUnit("{message}"),
		metric.WithDescription("Messages delivered and waiting for an acknowledgement (JetStream NumAckPending)."))
	if err != nil {
		return nil, fmt.Errorf("telemetry: %s: %w", MetricConsumerAckPending, err)
	}
	sample := func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		info, err := src.ConsumerInfo(ctx)
		if err != nil {
			return fmt.Errorf("telemetry: consumer info: %w", err)
		}
		if info == nil {
			return nil
		}
		attrs := metric.WithAttributeSet(attribute.NewSet(
			attribute.String("stream", info.Stream),
			attribute.String("consumer", info.Name),
		))
		o.ObserveInt64(pending, clampInt64(info.NumPending), attrs)
		o.ObserveInt64(redelivered, int64(info.NumRedelivered), attrs)
		o.ObserveInt64(ackPending, int64(info.NumAckPending), attrs)
		return nil
	}
	return meter.RegisterCallback(sample, pending, redelivered, ackPending)
}

func clampInt64(v uint64) int64 {
	const maxInt64 = 1<<63 - 1
	if v > maxInt64 {
		return maxInt64
	}
	return int64(v)
}
