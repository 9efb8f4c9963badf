// Package streams provisions the JetStream objects the worker needs
// (wire-contract §2 and §6) idempotently, and runs the embedded
// nats-server used when no NATS URL is configured.
package streams

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/aweber-imbi/imbi-worker/wire"
)

// Config names and sizes every object. Zero fields take the defaults
// written beside them (setDefaults).
type Config struct {
	// Stream is the work stream (IMBI_ACTIONS), subjects SubjectPrefix.>.
	Stream string
	// SubjectPrefix is the work subject prefix (imbi.actions).
	SubjectPrefix string
	// DLQStream is the dead-letter stream (IMBI_ACTIONS_DLQ).
	DLQStream string
	// DLQPrefix is the dead-letter subject prefix (imbi.dlq.actions).
	DLQPrefix string
	// Consumer is the durable pull consumer shared by every replica
	// (imbi-worker).
	Consumer string
	// FilterSubjects restricts the consumer to a subset of plugins
	// (none: every work subject). Pools with different filters need
	// different consumer names: a work-queue stream refuses overlapping
	// consumers.
	FilterSubjects []string
	// DoneBucket is the idempotency KV bucket (imbi_actions_done).
	DoneBucket string
	// LanesBucket is the rate-limit lanes KV bucket (imbi_lanes, v1.1 §B):
	// lane pauses and the deferral counts of messages (per-key TTL).
	LanesBucket string
	// Replicas of every stream and the bucket (1).
	Replicas int
	// DuplicateWindow is the work stream's Nats-Msg-Id dedup window (2 min).
	DuplicateWindow time.Duration
	// DLQMaxAge is how long dead letters are kept (14 days).
	DLQMaxAge time.Duration
	// DoneTTL is how long a done-marker lives (24 h).
	DoneTTL time.Duration
	// AckWait is the consumer's ack wait (30 s); the worker keeps long
	// actions alive with InProgress.
	AckWait time.Duration
	// MaxAckPending bounds unacked messages across every replica
	// (default 2048; must be ≥ replicas × concurrency; a replica holds up to
	// its --prefetch intake places, 4 × concurrency, plus 2 × concurrency
	// awaiting their done-markers: decision 0015).
	MaxAckPending int
	// MaxDeliver is the server's delivery cap: -1 (the default) for
	// none, else it must exceed the worker's max attempts so the worker,
	// not the server, decides when a message is dead. Rate-limit and lane
	// deferrals are deliveries too (v1.1 §B, decision 0010), so a finite
	// cap also bounds how often a message can be deferred.
	MaxDeliver int
	// Idempotency: create the done-marker bucket (true unless
	// --no-idempotency).
	Idempotency bool
	// Outcomes: create the outcome stream (v1.1 §C; true unless
	// --no-outcomes).
	Outcomes bool
	// OutcomesStream is the outcome event stream (IMBI_OUTCOMES).
	OutcomesStream string
	// OutcomesPrefix is its subject prefix (imbi.outcomes).
	OutcomesPrefix string
	// OutcomesMaxAge is how long outcome events are kept (7 days).
	OutcomesMaxAge time.Duration
	// MaxMsgSize is the largest message (headers and body) the work
	// stream stores (DefaultMaxMsgSize); the server refuses a larger
	// publish, so the publisher gets the error and nothing is stored.
	MaxMsgSize int32
}

// Defaults.
const (
	DefaultDuplicateWindow = 2 * time.Minute
	DefaultDLQMaxAge       = 14 * 24 * time.Hour
	DefaultDoneTTL         = 24 * time.Hour
	DefaultAckWait         = 30 * time.Second
	DefaultMaxAckPending   = 2048
	DefaultOutcomesMaxAge  = 7 * 24 * time.Hour
	// DefaultMaxDeliver: no server cap (decision 0010); the worker's own
	// attempt count (deliveries − deferrals) is the crash-loop guard.
	DefaultMaxDeliver = -1
	// LaneMarkerTTL is how long the lanes bucket keeps the marker of a
	// deferral count that expired.
	LaneMarkerTTL = time.Minute
	// DefaultMaxMsgSize is the work stream's message size limit: the
	// worker's default event body limit (DefaultMaxEventBytes) plus 64 KiB,
	// JetStream's limit on headers, so every event the worker accepts can
	// be stored and anything bigger is refused to its publisher.
	DefaultMaxMsgSize = DefaultMaxEventBytes + 64<<10
	// DefaultMaxEventBytes is the largest event body the worker decodes
	// (`run --max-event-bytes`; larger ones are dead-lettered unread).
	// 6 MiB: the largest webhooks expected are SBOM deliveries of a few
	// MiB (a CycloneDX document of a big service), the reliability
	// suite's 4 MiB event must run with room to spare, and a dead letter
	// of a 6 MiB event with its headers still fits the 8 MiB max_payload
	// of the embedded server (docs/security.md, docs/operations.md).
	DefaultMaxEventBytes = 6 << 20
)

// DefaultConfig returns the wire-contract defaults.
func DefaultConfig() Config {
	c := Config{Idempotency: true, Outcomes: true}
	c.SetDefaults()
	return c
}

// SetDefaults fills zero fields.
func (c *Config) SetDefaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.Stream, wire.DefaultStream)
	def(&c.SubjectPrefix, wire.DefaultSubjectPrefix)
	def(&c.DLQStream, wire.DefaultDLQStream)
	def(&c.DLQPrefix, wire.DefaultDLQPrefix)
	def(&c.Consumer, wire.DefaultConsumer)
	def(&c.DoneBucket, wire.DefaultDoneBucket)
	def(&c.OutcomesStream, wire.DefaultOutcomesStream)
	def(&c.OutcomesPrefix, wire.DefaultOutcomesPrefix)
	if c.OutcomesMaxAge <= 0 {
		c.OutcomesMaxAge = DefaultOutcomesMaxAge
	}
	def(&c.LanesBucket, wire.DefaultLanesBucket)
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.DuplicateWindow <= 0 {
		c.DuplicateWindow = DefaultDuplicateWindow
	}
	if c.DLQMaxAge <= 0 {
		c.DLQMaxAge = DefaultDLQMaxAge
	}
	if c.DoneTTL <= 0 {
		c.DoneTTL = DefaultDoneTTL
	}
	if c.AckWait <= 0 {
		c.AckWait = DefaultAckWait
	}
	if c.MaxAckPending <= 0 {
		c.MaxAckPending = DefaultMaxAckPending
	}
	if c.MaxDeliver == 0 || c.MaxDeliver < -1 {
		c.MaxDeliver = DefaultMaxDeliver
	}
	if c.MaxMsgSize == 0 {
		c.MaxMsgSize = DefaultMaxMsgSize
	}
}

// Validate checks the limits against each other; workers is the number
// of worker processes sharing the consumer (not stream replicas).
func (c Config) Validate(maxAttempts, concurrency, workers int) error {
	if c.MaxDeliver > 0 && c.MaxDeliver <= maxAttempts {
		return fmt.Errorf("consumer MaxDeliver (%d) must be greater than max attempts (%d) so the worker dead-letters a crash-looping message itself", c.MaxDeliver, maxAttempts)
	}
	if need := max(workers, 1) * concurrency; c.MaxAckPending < need {
		return fmt.Errorf("consumer MaxAckPending (%d) must be at least worker processes × concurrency (%d)", c.MaxAckPending, need)
	}
	return nil
}

// WorkSubjects is the work stream's subject filter.
func (c Config) WorkSubjects() []string { return []string{c.SubjectPrefix + ".>"} }

// DLQSubjects is the dead-letter stream's subject filter.
func (c Config) DLQSubjects() []string { return []string{c.DLQPrefix + ".>"} }

// OutcomeSubjects is the outcome stream's subject filter.
func (c Config) OutcomeSubjects() []string { return []string{c.OutcomesPrefix + ".>"} }

// Provisioned is what Apply created or updated.
type Provisioned struct {
	Stream, DLQ jetstream.Stream
	Outcomes    jetstream.Stream // nil when Outcomes is off
	Consumer    jetstream.Consumer
	Done        jetstream.KeyValue // nil when Idempotency is off
	Lanes       jetstream.KeyValue
}

// Apply creates or updates the work stream, the dead-letter stream, the
// outcome stream, the done-marker and lanes buckets and the durable consumer. Running it again with the
// same config changes nothing.
func Apply(ctx context.Context, js jetstream.JetStream, c Config) (*Provisioned, error) {
	c.SetDefaults()
	var p Provisioned
	var err error
	p.Stream, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        c.Stream,
		Description: "imbi-worker actions (wire-contract v1)",
		Subjects:    c.WorkSubjects(),
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
		Duplicates:  c.DuplicateWindow,
		Discard:     jetstream.DiscardOld,
		MaxMsgSize:  c.MaxMsgSize,
	})
	if err != nil {
		return nil, fmt.Errorf("work stream %s: %w", c.Stream, err)
	}
	p.DLQ, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        c.DLQStream,
		Description: "imbi-worker dead letters (wire-contract v1 §5)",
		Subjects:    c.DLQSubjects(),
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
		MaxAge:      c.DLQMaxAge,
		Duplicates:  c.DuplicateWindow,
		AllowDirect: true,
	})
	if err != nil {
		return nil, fmt.Errorf("dead-letter stream %s: %w", c.DLQStream, err)
	}
	if c.Outcomes {
		// Limits retention: consumers (the gateway's durable, outcomes
		// tail, the console) read without removing. The worker publishes
		// outcomes without Nats-Msg-Id (decision 0016), so the duplicate
		// window is the work stream's only for a publisher that sets one.
		p.Outcomes, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:        c.OutcomesStream,
			Description: "imbi-worker outcome events (wire-contract v1.1 §C)",
			Subjects:    c.OutcomeSubjects(),
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    c.Replicas,
			MaxAge:      c.OutcomesMaxAge,
			Duplicates:  c.DuplicateWindow,
			AllowDirect: true,
		})
		if err != nil {
			return nil, fmt.Errorf("outcome stream %s: %w", c.OutcomesStream, err)
		}
	}
	if c.Idempotency {
		p.Done, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      c.DoneBucket,
			Description: "imbi-worker done-markers by CloudEvent id (wire-contract §6)",
			TTL:         c.DoneTTL,
			Storage:     jetstream.FileStorage,
			Replicas:    c.Replicas,
			History:     1,
		})
		if err != nil {
			return nil, fmt.Errorf("done-marker bucket %s: %w", c.DoneBucket, err)
		}
	}
	p.Lanes, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:         c.LanesBucket,
		Description:    "imbi-worker rate-limit lanes and deferral counts (wire-contract v1.1 §B)",
		Storage:        jetstream.FileStorage,
		Replicas:       c.Replicas,
		History:        1,
		LimitMarkerTTL: LaneMarkerTTL,
	})
	if err != nil {
		return nil, fmt.Errorf("lanes bucket %s: %w", c.LanesBucket, err)
	}
	cc := jetstream.ConsumerConfig{
		Durable:       c.Consumer,
		Description:   "imbi-worker pool",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.AckWait,
		MaxAckPending: c.MaxAckPending,
		MaxDeliver:    c.MaxDeliver,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	switch len(c.FilterSubjects) {
	case 0:
	case 1:
		cc.FilterSubject = c.FilterSubjects[0]
	default:
		cc.FilterSubjects = c.FilterSubjects
	}
	p.Consumer, err = js.CreateOrUpdateConsumer(ctx, c.Stream, cc)
	if err != nil {
		if errors.Is(err, jetstream.ErrConsumerExists) {
			err = fmt.Errorf("%w (a work-queue stream needs disjoint filter subjects per consumer)", err)
		}
		return nil, fmt.Errorf("consumer %s on %s: %w", c.Consumer, c.Stream, err)
	}
	return &p, nil
}
