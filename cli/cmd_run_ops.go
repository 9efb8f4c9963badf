package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/pflag"
	"go.opentelemetry.io/otel"

	"github.com/aweber-imbi/imbi-worker/internal/admin"
	"github.com/aweber-imbi/imbi-worker/internal/console"
	"github.com/aweber-imbi/imbi-worker/internal/dlq"
	"github.com/aweber-imbi/imbi-worker/internal/lanes"
	"github.com/aweber-imbi/imbi-worker/internal/outcomes"
	"github.com/aweber-imbi/imbi-worker/internal/telemetry"
	"github.com/aweber-imbi/imbi-worker/internal/worker"
)

// opsFlags are the operations settings of `run`: the admin HTTP server.
// Logging flags (--log-level, --log-format) are in runFlags; traces and
// the resource come from the standard OTEL_* variables.
type opsFlags struct {
	adminAddr     string
	adminReadOnly bool
}

func (f *opsFlags) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.adminAddr, "admin-addr", admin.DefaultAddr,
		"admin HTTP server (/healthz, /readyz, /metrics) host:port; 0.0.0.0:9090 in a container, empty to disable")
	fs.BoolVar(&f.adminReadOnly, "admin-read-only", false,
		"operator console (/ui/, /api/v1/; on when "+console.EnvToken+" is set): refuse every replay, purge and lane change (403)")
}

// setupOps adds telemetry (Prometheus metrics, OTLP traces per OTEL_*) and
// the admin server to deps. The admin server starts at once, so /healthz
// answers while the worker connects and provisions; /readyz reports
// "worker" failing until the worker is bound, and turns false as soon as
// ctx is cancelled (shutdown), before the worker drains.
func setupOps(ctx context.Context, f *runFlags, deps *runDeps) error {
	instance := instanceID(f.workerID)
	prov, shutdown, err := telemetry.Setup(ctx, telemetry.Config{ServiceVersion: Version, InstanceID: instance})
	if err != nil {
		return err
	}
	deps.MeterProvider, deps.TracerProvider = prov.MeterProvider, prov.TracerProvider
	// The process's OTel globals too: a plugin instrumented with the global
	// API (otel.Tracer, otelhttp) then joins the message's trace and
	// propagates it downstream. run is the process entry point, so this is
	// the one place that may set them.
	otel.SetTracerProvider(prov.TracerProvider)
	otel.SetMeterProvider(prov.MeterProvider)
	otel.SetTextMapPropagator(prov.Propagator)
	deps.Closers = append(deps.Closers, func(ctx context.Context) error {
		// Bounded: an unreachable collector must not hold the exit.
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return shutdown(ctx)
	})
	if prov.TracesExported {
		deps.Logger.Info("exporting traces over OTLP")
	}

	if f.ops.adminAddr == "" {
		deps.Logger.Info("admin server disabled (--admin-addr is empty)")
		return nil
	}
	var current atomic.Pointer[worker.Worker]
	// The console is on only with a token; the value is read from the
	// environment (never a flag: flags show up in ps).
	opc := console.New(console.Config{
		Token:    os.Getenv(console.EnvToken),
		ReadOnly: f.ops.adminReadOnly,
		Actions:  func() any { return buildActionsReport(deps.Registry) },
		Logger:   deps.Logger,
	})
	if opc.Enabled() {
		deps.Logger.Info("operator console on", "path", "/ui/", "read_only", f.ops.adminReadOnly)
	}
	srv := admin.New(admin.Config{
		Console: opc,
		Addr:    f.ops.adminAddr,
		Metrics: prov.MetricsHandler(),
		Logger:  deps.Logger,
		Checks: []admin.Check{{Name: "worker", Check: func(context.Context) error {
			w := current.Load()
			if w == nil {
				return errors.New("starting")
			}
			return w.Ready()
		}}},
	})
	if err := srv.Start(); err != nil {
		// The default address on a host that already runs a worker (local
		// replicas, tests): carry on without the admin server. Any other
		// address was chosen by the operator and must work.
		if f.ops.adminAddr == admin.DefaultAddr && errors.Is(err, syscall.EADDRINUSE) {
			deps.Logger.Warn("admin server not started: default address in use; set --admin-addr", "addr", f.ops.adminAddr)
			return nil
		}
		return err
	}
	deps.Closers = append(deps.Closers, srv.Shutdown, func(context.Context) error { opc.Close(); return nil })
	go func() {
		<-ctx.Done()
		srv.SetDraining() // first thing on SIGTERM: out of rotation
	}()

	deps.OnWorker = append(deps.OnWorker, func(ctx context.Context, w *worker.Worker, js jetstream.JetStream) error {
		sc := f.streams.config()
		cons, err := js.Consumer(ctx, sc.Stream, sc.Consumer)
		if err != nil {
			return fmt.Errorf("consumer gauges: %w", err)
		}
		if _, err := telemetry.RegisterConsumerGauges(prov.MeterProvider.Meter("github.com/aweber-imbi/imbi-worker/cli"),
			telemetry.ConsumerInfoFunc(cons.Info), 0); err != nil {
			return err
		}
		// Added here, not above: every dependency (e.g. the credential
		// store's Neo4j ping) is registered by the time the worker exists.
		for _, c := range deps.ReadinessChecks {
			srv.AddCheck(c)
		}
		if opc.Enabled() {
			store, err := dlq.Open(ctx, js, dlq.Config{Stream: sc.DLQStream, Prefix: sc.DLQPrefix, WorkPrefix: sc.SubjectPrefix})
			if err != nil {
				return fmt.Errorf("operator console: %w", err)
			}
			opc.SetDLQ(store)
			if sc.Outcomes {
				opc.SetOutcomes(outcomes.ConsoleReader{R: outcomes.NewReader(js, sc.OutcomesStream, sc.OutcomesPrefix)})
			}
			lstore, err := lanes.Open(ctx, js, sc.LanesBucket)
			if err != nil {
				return fmt.Errorf("operator console: %w", err)
			}
			opc.SetLanes(consoleLanes{lstore})
		}
		current.Store(w)
		return nil
	})
	return nil
}

// instanceID is --worker-id, else hostname-pid: the id in dead letters,
// outcome events and the telemetry resource.
func instanceID(flag string) string {
	if flag != "" {
		return flag
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}
