package worker

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/aweber-imbi/imbi-worker/internal/donemarker"
	"github.com/aweber-imbi/imbi-worker/internal/streams"
)

// Defaults (issue 3, wire-contract §2/§4).
const (
	DefaultConcurrency   = 16
	DefaultMaxAttempts   = 5
	DefaultBackoffBase   = time.Second
	DefaultBackoffMax    = 5 * time.Minute
	DefaultShutdownGrace = 30 * time.Second
	// DefaultRateLimitMaxWait is how long a rate-limited message may wait,
	// from its first receipt, before it is dead-lettered (v1.1 §B).
	DefaultRateLimitMaxWait = 24 * time.Hour
	// DefaultLaneRecheck is the longest a deferred message stays away: a
	// message of a lane paused for longer comes back this often to see
	// whether the lane was resumed (decision 0010).
	DefaultLaneRecheck = 30 * time.Second
	// DefaultMaxEventBytes is the largest event body decoded
	// (streams.DefaultMaxEventBytes, where the reason is).
	DefaultMaxEventBytes = streams.DefaultMaxEventBytes
	// DefaultMaxInflightBytes bounds the event body bytes the intake
	// holds decoding, decoded or running at once (8 MiB). A decoded event
	// costs several times its size in heap (≈ 8× for an SBOM-shaped body of
	// many small objects), so with the shipped GOMEMLIMIT of 220 MiB a
	// backlog of 1 MiB events peaked at 376 MiB RSS with 64 MiB, 290 MiB
	// with 16 MiB and 239 MiB with 8 MiB
	// (TestMemoryBoundedLargeEvents, a 256 Mi pod). 8 MiB is thousands of
	// ordinary 1–2 KiB events, so they never wait for it, and one event
	// above it (up to --max-event-bytes) still runs, alone.
	DefaultMaxInflightBytes = 8 << 20

	DefaultShutdownCancelWait  = 5 * time.Second
	DefaultShutdownMarkerFlush = donemarker.WriteTimeout + time.Second
	DefaultShutdownMarkerRetry = 10 * time.Second
)

// Config configures a Worker. Zero fields take the defaults in their
// comments (setDefaults).
type Config struct {
	// Streams names the work stream, consumer, dead-letter prefix and
	// done-marker bucket (streams.DefaultConfig()).
	Streams streams.Config
	// Concurrency bounds in-flight actions in this process (16).
	Concurrency int
	// Prefetch is the number of intake places: how many messages this
	// process holds at once, pulled, waiting for an action slot or running
	// (IntakePlacesPerSlot × Concurrency; pull.go). It pulls exactly as
	// many as are free, and keeps each alive from its arrival.
	Prefetch int
	// MaxAttempts is the number of deliveries a retryable failure gets
	// before it is dead-lettered (5).
	MaxAttempts int
	// BackoffBase and BackoffMax bound the exponential backoff with full
	// jitter between retries (1 s, 5 min).
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// Shutdown stages (Stop; docs/operations.md "Shutdown"), each bounded:
	//
	// ShutdownGrace is how long in-flight actions may run after shutdown
	// starts (30 s); what was pulled and not started is nak'ed at once.
	ShutdownGrace time.Duration
	// ShutdownCancelWait is how long actions cancelled at the end of the
	// grace may take to return (5 s); an action that ignores its context
	// is abandoned by dispatch meanwhile. Past it the worker stops anyway.
	ShutdownCancelWait time.Duration
	// ShutdownMarkerFlush is how long the done-marker writer may take to
	// hand back the markers queued when the actions ended (the marker
	// write timeout + 1 s = 11 s); unacked messages are redelivered.
	ShutdownMarkerFlush time.Duration
	// ShutdownMarkerRetry is how long done-markers still being retried get
	// before their messages are left unacked for redelivery (10 s, and
	// never more than ShutdownGrace).
	ShutdownMarkerRetry time.Duration
	// InProgressInterval is how often a running action's message is
	// marked in progress (AckWait / 3).
	InProgressInterval time.Duration
	// Idempotency: check and write done-markers (wire-contract §6).
	Idempotency bool
	// RateLimitMaxWait: a rate-limited message is deferred (no attempt
	// used) until it has waited this long since its first receipt, then
	// dead-lettered rate_limited (24 h; v1.1 §B, decision 0010).
	RateLimitMaxWait time.Duration
	// LaneRecheck caps one deferral (30 s): a message of a paused lane
	// comes back at least this often, so a resume takes effect within it.
	LaneRecheck time.Duration
	// MaxEventBytes: an event body above it is dead-lettered
	// invalid_event ("too large") without being decoded, and without its
	// body (wire.DLQBodyOmitted) (DefaultMaxEventBytes).
	MaxEventBytes int
	// MaxInflightBytes bounds the body bytes of the messages being
	// decoded, waiting for an action slot or running; a message waits for
	// room before it is decoded. One event larger than the whole budget
	// runs alone (DefaultMaxInflightBytes).
	MaxInflightBytes int64
	// WorkerID names this instance in dead letters (hostname-pid).
	WorkerID string
	// Logger receives every log line (slog.Default()).
	Logger *slog.Logger
	// MeterProvider and TracerProvider are OTel API providers (no-op).
	MeterProvider  metric.MeterProvider
	TracerProvider trace.TracerProvider

	// Hooks run in every settle (settle.go): chains, outcome events.
	Hooks Hooks

	// hooks are test-only fault injection points.
	hooks hooks
}

type hooks struct {
	// beforeDecode runs before a message is decoded (a panic here is a
	// panic on the decode path).
	beforeDecode func(body []byte)
	// afterDone runs after the done-marker is written and before the ack;
	// returning true skips the ack (simulates a crash in between).
	afterDone func(ceID string) (skipAck bool)
}

func (c *Config) setDefaults() {
	c.Streams.SetDefaults()
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Prefetch <= 0 {
		c.Prefetch = IntakePlacesPerSlot * c.Concurrency
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.BackoffBase <= 0 {
		c.BackoffBase = DefaultBackoffBase
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = DefaultBackoffMax
	}
	if c.RateLimitMaxWait <= 0 {
		c.RateLimitMaxWait = DefaultRateLimitMaxWait
	}
	if c.LaneRecheck <= 0 {
		c.LaneRecheck = DefaultLaneRecheck
	}
	if c.ShutdownGrace <= 0 {
		c.ShutdownGrace = DefaultShutdownGrace
	}
	if c.MaxEventBytes <= 0 {
		c.MaxEventBytes = DefaultMaxEventBytes
	}
	if c.MaxInflightBytes <= 0 {
		c.MaxInflightBytes = DefaultMaxInflightBytes
	}
	if c.ShutdownCancelWait <= 0 {
		c.ShutdownCancelWait = DefaultShutdownCancelWait
	}
	if c.ShutdownMarkerFlush <= 0 {
		c.ShutdownMarkerFlush = DefaultShutdownMarkerFlush
	}
	if c.ShutdownMarkerRetry <= 0 {
		c.ShutdownMarkerRetry = DefaultShutdownMarkerRetry
	}
	if c.InProgressInterval <= 0 {
		c.InProgressInterval = c.Streams.AckWait / 3
	}
	if c.WorkerID == "" {
		host, _ := os.Hostname()
		c.WorkerID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.MeterProvider == nil {
		c.MeterProvider = metricnoop.NewMeterProvider()
	}
	if c.TracerProvider == nil {
		c.TracerProvider = tracenoop.NewTracerProvider()
	}
}

func (c *Config) validate() error {
	if c.BackoffMax < c.BackoffBase {
		return errors.New("backoff max must not be below backoff base")
	}
	if c.Streams.MaxDeliver > 0 && c.Streams.MaxDeliver <= c.MaxAttempts {
		return fmt.Errorf("consumer MaxDeliver (%d) must exceed max attempts (%d)", c.Streams.MaxDeliver, c.MaxAttempts)
	}
	return nil
}
