// Package telemetry sets up the OpenTelemetry SDK for imbi-worker: a
// MeterProvider exported to Prometheus (its own registry, served by the admin
// server's /metrics), a TracerProvider exported over OTLP when the standard
// OTEL_* variables ask for it (off otherwise), the W3C TraceContext
// propagator, and the structured logger.
//
// The rest of the worker only sees the OTel API (trace.TracerProvider,
// metric.MeterProvider): the SDK lives here so tests and embedders can swap
// it.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/otlptranslator"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// DefaultServiceName is service.name unless OTEL_SERVICE_NAME or
// OTEL_RESOURCE_ATTRIBUTES says otherwise.
const DefaultServiceName = "imbi-worker"

// Standard OpenTelemetry environment variables read here (the OTLP exporters
// read the rest of OTEL_EXPORTER_OTLP_* themselves: headers, TLS, timeout).
const (
	EnvTracesExporter      = "OTEL_TRACES_EXPORTER"
	EnvOTLPEndpoint        = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvOTLPTracesEndpoint  = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvOTLPProtocol        = "OTEL_EXPORTER_OTLP_PROTOCOL"
	EnvOTLPTracesProtocol  = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	EnvServiceName         = "OTEL_SERVICE_NAME"
	EnvResourceAttributes  = "OTEL_RESOURCE_ATTRIBUTES"
	protocolGRPC           = "grpc"
	protocolHTTPProtobuf   = "http/protobuf"
	defaultOTLPProtocol    = protocolHTTPProtobuf // the OTel spec's default
	tracesExporterOTLP     = "otlp"
	tracesExporterDisabled = "none"
)

// DurationBuckets returns the histogram boundaries, in seconds, of every
// instrument whose unit is "s". The SDK default buckets (0..10000) suit
// milliseconds; actions run from a few ms up to the 10 s default timeout and
// beyond, so the boundaries follow the OTel HTTP-duration advice, stretched
// to a minute. A new slice each call: nothing shared can be changed.
func DurationBuckets() []float64 {
	return []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 30, 60}
}

// Config configures Setup. The zero value is usable: Prometheus metrics on,
// traces as the OTEL_* environment says.
type Config struct {
	// ServiceName is the default service.name (default "imbi-worker");
	// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override it.
	ServiceName string
	// ServiceVersion becomes service.version when set.
	ServiceVersion string
	// InstanceID becomes service.instance.id when set (the worker id that
	// also appears in Imbi-Dlq-Worker).
	InstanceID string
	// SpanExporter, when set, replaces the OTLP exporter and is called
	// synchronously at span end. Meant for tests (tracetest.InMemoryExporter).
	SpanExporter sdktrace.SpanExporter
	// NoRuntimeMetrics leaves out the Go runtime and process collectors.
	NoRuntimeMetrics bool
}

func (c *Config) setDefaults() {
	if c.ServiceName == "" {
		c.ServiceName = DefaultServiceName
	}
}

// env reads a standard variable. The process environment is the one
// source: the OTLP exporters and resource.WithFromEnv read it too, so an
// injected lookup could only disagree with them.
func env(name string) string { return strings.TrimSpace(os.Getenv(name)) }

// Providers are the SDK objects the rest of the worker is given.
type Providers struct {
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	// Propagator is W3C TraceContext (+ Baggage).
	Propagator propagation.TextMapPropagator
	// Registry holds the OTel metrics and the Go runtime/process collectors;
	// it is not prometheus.DefaultRegisterer, so two workers in one process
	// (tests) never collide.
	Registry *prometheus.Registry
	// TracesExported tells whether spans leave the process (an OTLP or a
	// configured exporter); when false TracerProvider is a no-op.
	TracesExported bool
}

// MetricsHandler serves Registry in the Prometheus text/OpenMetrics format.
func (p *Providers) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(p.Registry, promhttp.HandlerOpts{
		Registry:          p.Registry, // promhttp_metric_handler_errors_total
		EnableOpenMetrics: true,
	})
}

// Setup builds the providers. shutdown flushes and stops them; call it once,
// last, with a bounded context.
func Setup(ctx context.Context, cfg Config) (*Providers, func(context.Context) error, error) {
	cfg.setDefaults()
	res, err := newResource(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}

	reg := prometheus.NewRegistry()
	if !cfg.NoRuntimeMetrics {
		if err := reg.Register(collectors.NewGoCollector()); err != nil {
			return nil, nil, fmt.Errorf("telemetry: go collector: %w", err)
		}
		if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
			return nil, nil, fmt.Errorf("telemetry: process collector: %w", err)
		}
	}
	promExp, err := otelprom.New(
		otelprom.WithRegisterer(reg),
		// Prometheus conventions: dots → underscores, unit and _total
		// suffixes (imbi_worker.action.duration, s → ..._seconds).
		otelprom.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithSuffixes),
		otelprom.WithoutScopeInfo(),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("telemetry: prometheus exporter: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(
		sdkmetric.WithResource(res),
		sdkmetric.WithReader(promExp),
		sdkmetric.WithView(secondsHistogramView),
	)

	p := &Providers{
		MeterProvider: mp,
		Propagator:    propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
		Registry:      reg,
	}
	shutdowns := []func(context.Context) error{mp.Shutdown}

	tp, err := newTracerProvider(ctx, cfg, res)
	if err != nil {
		_ = mp.Shutdown(ctx)
		return nil, nil, err
	}
	if tp != nil {
		p.TracerProvider = tp
		p.TracesExported = true
		shutdowns = append(shutdowns, tp.Shutdown)
	} else {
		p.TracerProvider = tracenoop.NewTracerProvider()
	}

	shutdown := func(ctx context.Context) error {
		var errs []error
		// Traces first: their exporter may still be flushing a batch.
		for i := len(shutdowns) - 1; i >= 0; i-- {
			errs = append(errs, shutdowns[i](ctx))
		}
		return errors.Join(errs...)
	}
	return p, shutdown, nil
}

// secondsHistogramView gives every histogram in seconds DurationBuckets.
func secondsHistogramView(inst sdkmetric.Instrument) (sdkmetric.Stream, bool) {
	if inst.Kind != sdkmetric.InstrumentKindHistogram || inst.Unit != "s" {
		return sdkmetric.Stream{}, false
	}
	return sdkmetric.Stream{
		Name:        inst.Name,
		Description: inst.Description,
		Unit:        inst.Unit,
		Aggregation: sdkmetric.AggregationExplicitBucketHistogram{Boundaries: DurationBuckets()},
	}, true
}

func newResource(ctx context.Context, cfg Config) (*resource.Resource, error) {
	attrs := []resource.Option{resource.WithAttributes(semconv.ServiceName(cfg.ServiceName))}
	if cfg.ServiceVersion != "" {
		attrs = append(attrs, resource.WithAttributes(semconv.ServiceVersion(cfg.ServiceVersion)))
	}
	if cfg.InstanceID != "" {
		attrs = append(attrs, resource.WithAttributes(semconv.ServiceInstanceID(cfg.InstanceID)))
	}
	// Later options win: OTEL_RESOURCE_ATTRIBUTES, then OTEL_SERVICE_NAME,
	// override the defaults above.
	opts := append(attrs, resource.WithTelemetrySDK(), resource.WithFromEnv())
	res, err := resource.New(ctx, opts...)
	if err != nil {
		// A malformed OTEL_RESOURCE_ATTRIBUTES still yields the rest.
		if res == nil {
			return nil, fmt.Errorf("telemetry: resource: %w", err)
		}
	}
	return res, nil
}

// tracesWanted decides, from the standard variables, whether spans are
// exported and with which OTLP protocol. ok=false means tracing is off.
func tracesWanted() (protocol string, ok bool, err error) {
	switch exp := strings.ToLower(env(EnvTracesExporter)); exp {
	case tracesExporterDisabled:
		return "", false, nil
	case "":
		if env(EnvOTLPEndpoint) == "" && env(EnvOTLPTracesEndpoint) == "" {
			return "", false, nil
		}
	case tracesExporterOTLP:
	default:
		return "", false, fmt.Errorf("telemetry: %s=%q is not supported (use %q or %q)",
			EnvTracesExporter, exp, tracesExporterOTLP, tracesExporterDisabled)
	}
	protocol = env(EnvOTLPTracesProtocol)
	if protocol == "" {
		protocol = env(EnvOTLPProtocol)
	}
	if protocol == "" {
		protocol = defaultOTLPProtocol
	}
	switch protocol {
	case protocolGRPC, protocolHTTPProtobuf:
		return protocol, true, nil
	default:
		return "", false, fmt.Errorf("telemetry: OTLP protocol %q is not supported (use %q or %q)",
			protocol, protocolGRPC, protocolHTTPProtobuf)
	}
}

func newTracerProvider(ctx context.Context, cfg Config, res *resource.Resource) (*sdktrace.TracerProvider, error) {
	if cfg.SpanExporter != nil {
		return sdktrace.NewTracerProvider(
			sdktrace.WithResource(res),
			sdktrace.WithSyncer(cfg.SpanExporter),
		), nil
	}
	protocol, ok, err := tracesWanted()
	if err != nil || !ok {
		return nil, err
	}
	var exp sdktrace.SpanExporter
	switch protocol {
	case protocolGRPC:
		exp, err = otlptracegrpc.New(ctx)
	default:
		exp, err = otlptracehttp.New(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("telemetry: OTLP %s trace exporter: %w", protocol, err)
	}
	// The sampler comes from OTEL_TRACES_SAMPLER(_ARG) when set (the SDK
	// reads them); the default is parent-based always-on.
	return sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		sdktrace.WithBatcher(exp),
	), nil
}
