package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/aweber-imbi/imbi-worker/internal/admin"
	"github.com/aweber-imbi/imbi-worker/internal/dispatch"
	"github.com/aweber-imbi/imbi-worker/internal/outcomes"
	"github.com/aweber-imbi/imbi-worker/internal/registry"
	"github.com/aweber-imbi/imbi-worker/internal/remote"
	"github.com/aweber-imbi/imbi-worker/internal/streams"
	"github.com/aweber-imbi/imbi-worker/internal/telemetry"
	"github.com/aweber-imbi/imbi-worker/internal/worker"
)

// streamFlags name and size the JetStream objects (run and streams apply).
type streamFlags struct {
	cfg            streams.Config
	noIdempotency  bool
	noOutcomes     bool
	filterSubjects []string
}

func (f *streamFlags) addFlags(fs *pflag.FlagSet) {
	d := streams.DefaultConfig()
	fs.StringVar(&f.cfg.Stream, "stream", d.Stream, "work stream name")
	fs.StringVar(&f.cfg.SubjectPrefix, "subject-prefix", d.SubjectPrefix, "work subject prefix (<prefix>.<plugin>.<action>)")
	fs.StringVar(&f.cfg.DLQStream, "dlq-stream", d.DLQStream, "dead-letter stream name")
	fs.StringVar(&f.cfg.DLQPrefix, "dlq-prefix", d.DLQPrefix, "dead-letter subject prefix")
	fs.StringVar(&f.cfg.Consumer, "consumer", d.Consumer, "durable pull consumer shared by every replica")
	fs.StringVar(&f.cfg.DoneBucket, "done-bucket", d.DoneBucket, "KV bucket of done-markers (idempotency)")
	fs.StringVar(&f.cfg.LanesBucket, "lanes-bucket", d.LanesBucket, "KV bucket of rate-limit lanes and deferral counts")
	fs.StringSliceVar(&f.filterSubjects, "filter-subject", nil, "serve only these work subjects, e.g. imbi.actions.github.> (repeatable; pools with different filters need different --consumer names)")
	fs.IntVar(&f.cfg.Replicas, "replicas", d.Replicas, "stream and bucket replicas (3 on a cluster)")
	fs.DurationVar(&f.cfg.DuplicateWindow, "duplicate-window", d.DuplicateWindow, "work stream Nats-Msg-Id dedup window")
	fs.DurationVar(&f.cfg.DLQMaxAge, "dlq-max-age", d.DLQMaxAge, "how long dead letters are kept")
	fs.DurationVar(&f.cfg.DoneTTL, "done-ttl", d.DoneTTL, "how long a done-marker lives")
	fs.DurationVar(&f.cfg.AckWait, "ack-wait", d.AckWait, "consumer ack wait (kept alive with InProgress while an action runs)")
	fs.IntVar(&f.cfg.MaxAckPending, "max-ack-pending", d.MaxAckPending, "consumer max unacked messages (≥ --pool-size × concurrency)")
	fs.IntVar(&f.cfg.MaxDeliver, "max-deliver", d.MaxDeliver, "consumer max deliveries: -1 for no cap (rate-limit deferrals are deliveries too), else more than --max-attempts")
	fs.BoolVar(&f.noIdempotency, "no-idempotency", false, "do not check or write done-markers")
	fs.StringVar(&f.cfg.OutcomesStream, "outcomes-stream", d.OutcomesStream, "outcome event stream name (v1.1 §C)")
	fs.StringVar(&f.cfg.OutcomesPrefix, "outcomes-prefix", d.OutcomesPrefix, "outcome subject prefix (<prefix>.<plugin>.<action>)")
	fs.DurationVar(&f.cfg.OutcomesMaxAge, "outcomes-max-age", d.OutcomesMaxAge, "how long outcome events are kept")
	fs.BoolVar(&f.noOutcomes, "no-outcomes", false, "do not publish an outcome event per settle decision (nor provision the outcome stream)")
	fs.Int32Var(&f.cfg.MaxMsgSize, "max-msg-size", d.MaxMsgSize, "largest message (headers and body, bytes) the work stream stores; larger publishes are refused (-1: the server's max_payload)")
}

func (f *streamFlags) config() streams.Config {
	c := f.cfg
	c.FilterSubjects = f.filterSubjects
	c.Idempotency = !f.noIdempotency
	c.Outcomes = !f.noOutcomes
	c.SetDefaults()
	return c
}

type runFlags struct {
	conn          natsConnFlags
	streams       streamFlags
	concurrency   int
	prefetch      int
	maxEventBytes int
	maxInflight   int64
	maxAttempts   int
	backoffBase   time.Duration
	backoffMax    time.Duration
	pluginTimeout time.Duration
	shutdownGrace time.Duration
	rateLimitWait time.Duration
	laneRecheck   time.Duration
	noProvision   bool
	poolSize      int
	workerID      string
	logLevel      string
	logFormat     string
	ops           opsFlags       // admin server (cmd_run_ops.go)
	creds         credsRunFlags  // Neo4j credential store (cmd_run_creds.go)
	http          httpFlags      // http#request (cmd_run_http.go)
	remote        remoteRunFlags // Python plugin hosts (cmd_run_remote.go)
}

func newRunCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Consume action CloudEvents from JetStream and run them",
		Long: `Run the worker. With no --nats-url it starts an embedded JetStream server
(file store under --data-dir) and prints how to reach it. It provisions the
work stream, the dead-letter stream, the done-marker bucket and the durable
consumer (unless --no-provision), then runs actions until SIGINT/SIGTERM,
when it stops pulling, lets in-flight actions finish within --shutdown-grace
and exits 0.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runWorker(cmd.Context(), cmd, &f)
		},
	}
	fs := cmd.Flags()
	f.conn.addFlags(fs, true)
	f.streams.addFlags(fs)
	fs.IntVar(&f.concurrency, "concurrency", worker.DefaultConcurrency, "actions run at once by this process")
	fs.IntVar(&f.prefetch, "prefetch", 0, "intake places: messages held at once, pulled, waiting for a slot or running, each kept in progress; pulls ask for exactly the free places (0: 4 × concurrency)")
	fs.IntVar(&f.maxEventBytes, "max-event-bytes", worker.DefaultMaxEventBytes, "an event body above this many bytes is dead-lettered invalid_event (too large) unread, without its body")
	fs.Int64Var(&f.maxInflight, "max-inflight-bytes", worker.DefaultMaxInflightBytes, "event body bytes decoded, waiting or running at once; a message waits for room before it is decoded")
	fs.IntVar(&f.maxAttempts, "max-attempts", worker.DefaultMaxAttempts, "deliveries of a retryable failure before it is dead-lettered")
	fs.DurationVar(&f.backoffBase, "backoff-base", worker.DefaultBackoffBase, "first retry delay (exponential, full jitter)")
	fs.DurationVar(&f.backoffMax, "backoff-max", worker.DefaultBackoffMax, "retry delay cap")
	fs.DurationVar(&f.pluginTimeout, "plugin-timeout", dispatch.DefaultTimeout, "action deadline when the action sets none (also IMBI_PLUGIN_TIMEOUT_SECONDS)")
	fs.DurationVar(&f.shutdownGrace, "shutdown-grace", worker.DefaultShutdownGrace, "how long in-flight actions may finish after SIGTERM")
	fs.DurationVar(&f.rateLimitWait, "rate-limit-max-wait", worker.DefaultRateLimitMaxWait, "how long a rate-limited message may wait from its first receipt before it is dead-lettered rate_limited")
	fs.DurationVar(&f.laneRecheck, "lane-recheck", worker.DefaultLaneRecheck, "longest single deferral: a paused lane's messages come back this often to see whether it was resumed")
	fs.BoolVar(&f.noProvision, "no-provision", false, "do not create or update streams, bucket and consumer (they must exist)")
	fs.IntVar(&f.poolSize, "pool-size", 1, "worker processes sharing the consumer (checks --max-ack-pending ≥ pool size × concurrency)")
	fs.StringVar(&f.workerID, "worker-id", "", "instance id in dead letters (default hostname-pid)")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", telemetry.LogFormatAuto, "auto (text on a terminal, else json), json or text")
	f.ops.addFlags(fs)
	f.creds.addFlags(fs)
	f.http.addFlags(fs)
	f.remote.addFlags(fs)
	return cmd
}

// runDeps is everything the worker is wired with, built in one place
// (newRunDeps) so the credential store and telemetry/admin setup can be
// added without touching the run loop: set Credentials, the providers,
// append to Closers, and register callbacks in OnWorker.
type runDeps struct {
	Logger         *slog.Logger
	Registry       *registry.Registry
	Remote         *remote.Source            // remote actions (Python plugin hosts)
	Credentials    dispatch.CredentialSource // nil: no store configured
	MeterProvider  metric.MeterProvider      // nil: no-op
	TracerProvider trace.TracerProvider      // nil: no-op
	// OnWorker runs once the worker is built, before it consumes (e.g.
	// start the admin server with w.Ready as its readiness check).
	OnWorker []func(ctx context.Context, w *worker.Worker, js jetstream.JetStream) error
	// Closers run in reverse order after the worker stopped.
	Closers []func(ctx context.Context) error
	// ReadinessChecks join /readyz once the worker is built, e.g.
	// admin.PingCheck("neo4j", store) for the credential store.
	ReadinessChecks []admin.Check
}

func (d *runDeps) close(ctx context.Context) {
	for i := len(d.Closers) - 1; i >= 0; i-- {
		if err := d.Closers[i](ctx); err != nil {
			d.Logger.Warn("shutdown step failed", "error", err)
		}
	}
}

func newRunDeps(ctx context.Context, f *runFlags, stderr io.Writer) (*runDeps, error) {
	log, err := newLogger(stderr, f.logLevel, f.logFormat)
	if err != nil {
		return nil, err
	}
	src, err := newRemoteSource(&f.remote, log)
	if err != nil {
		return nil, err
	}
	reg := registry.New(f.http.registrations(src.Registrations))
	res, err := reg.Load()
	if err != nil {
		return nil, fmt.Errorf("load plugins: %w", err)
	}
	for name, msg := range res.Errors {
		log.Error("plugin failed to load", "registration", name, "error", msg)
	}
	log.Info("plugins loaded", "plugins", res.Loaded)
	deps := &runDeps{Logger: log, Registry: reg, Remote: src}
	if err := setupOps(ctx, f, deps); err != nil {
		deps.close(context.WithoutCancel(ctx))
		return nil, err
	}
	// After setupOps: the store uses its meter provider and adds a
	// readiness check.
	if err := setupCredentials(ctx, &f.creds, deps); err != nil {
		deps.close(context.WithoutCancel(ctx))
		return nil, err
	}
	return deps, nil
}

// newLogger is telemetry.NewLogger: JSON or text, secrets redacted, trace
// ids added from the context.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	l, err := telemetry.NewLogger(w, level, format)
	if err != nil {
		return nil, fmt.Errorf("--log-level/--log-format: %w", err)
	}
	return l, nil
}

// pluginTimeout honours IMBI_PLUGIN_TIMEOUT_SECONDS (the Python name, in
// seconds) when neither --plugin-timeout nor IMBI_PLUGIN_TIMEOUT is set.
func pluginTimeout(cmd *cobra.Command, f *runFlags) (time.Duration, error) {
	if cmd.Flags().Changed("plugin-timeout") {
		return f.pluginTimeout, nil
	}
	if _, ok := os.LookupEnv(EnvName("plugin-timeout")); ok {
		return f.pluginTimeout, nil
	}
	if v, ok := os.LookupEnv("IMBI_PLUGIN_TIMEOUT_SECONDS"); ok {
		secs, err := strconv.ParseFloat(v, 64)
		if err != nil || secs <= 0 {
			return 0, fmt.Errorf("IMBI_PLUGIN_TIMEOUT_SECONDS=%q: want a positive number of seconds", v)
		}
		return time.Duration(secs * float64(time.Second)), nil
	}
	return f.pluginTimeout, nil
}

func runWorker(ctx context.Context, cmd *cobra.Command, f *runFlags) error {
	timeout, err := pluginTimeout(cmd, f)
	if err != nil {
		return err
	}
	deps, err := newRunDeps(ctx, f, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	defer deps.close(context.WithoutCancel(ctx))
	log := deps.Logger
	// GOGC 400 unless GOGC is set (docs/performance.md); GOMEMLIMIT, when
	// set, caps the heap as usual.
	log.Debug("garbage collector", "settings", worker.TuneGC(worker.DefaultGCPercent, 0, os.Getenv))

	sc := f.streams.config()
	if err := sc.Validate(f.maxAttempts, f.concurrency, f.poolSize); err != nil {
		return err
	}
	f.conn.InboxPrefix = WorkerInboxPrefix
	sess, err := f.conn.connect(true, cmd.OutOrStdout(), log)
	if err != nil {
		return err
	}
	defer sess.Close()
	js, err := jetstream.New(sess.NC)
	if err != nil {
		return err
	}
	if !f.noProvision {
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := streams.Apply(pctx, js, sc)
		cancel()
		if err != nil {
			return fmt.Errorf("provision: %w", err)
		}
	}

	if err := startRemote(ctx, deps.Remote, sess.NC, deps.Registry); err != nil {
		return err
	}
	disp := &dispatch.Dispatcher{Registry: deps.Remote.Registry(deps.Registry), Credentials: deps.Credentials, DefaultTimeout: timeout}
	workerID := instanceID(f.workerID)
	var hooks worker.Hooks
	if sc.Outcomes {
		// Appended last: the outcome hook must be the last BeforeSettle
		// hook (outcomes.Hook).
		hooks = outcomes.NewHook(js, outcomes.Config{Prefix: sc.OutcomesPrefix, WorkerID: workerID, Logger: log}).Hooks(hooks)
	}
	w, err := worker.New(sess.NC, disp, worker.Config{
		Hooks:            hooks,
		Streams:          sc,
		Concurrency:      f.concurrency,
		Prefetch:         f.prefetch,
		MaxEventBytes:    f.maxEventBytes,
		MaxInflightBytes: f.maxInflight,
		MaxAttempts:      f.maxAttempts,
		BackoffBase:      f.backoffBase,
		BackoffMax:       f.backoffMax,
		ShutdownGrace:    f.shutdownGrace,
		RateLimitMaxWait: f.rateLimitWait,
		LaneRecheck:      f.laneRecheck,
		Idempotency:      sc.Idempotency,
		WorkerID:         workerID,
		Logger:           log,
		MeterProvider:    deps.MeterProvider,
		TracerProvider:   deps.TracerProvider,
	})
	if err != nil {
		return err
	}
	for _, hook := range deps.OnWorker {
		if err := hook(ctx, w, js); err != nil {
			return err
		}
	}
	if err := w.Run(ctx); err != nil {
		return err
	}
	return nil
}
