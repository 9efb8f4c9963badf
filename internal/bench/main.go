// Command bench measures the worker against raw JetStream on one embedded
// server (issue 3 benchmark; `make bench`). In one run:
//
//  1. raw consume+ack of N pre-published 1.2 KiB CloudEvents: the ceiling;
//  2. the full worker pipeline (decode, envelope + config validation,
//     dispatch, settle) with a no-op action, idempotency off, then on,
//     then on with outcome events (v1.1 §C, what `run` does by default);
//  3. publish→action-start latency (p50/p99) at half the measured max rate;
//  4. peak RSS of the process.
//
// Every pipeline step stays on; nothing is skipped to reach a figure.
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/aweber-imbi/imbi-worker/internal/benchdata"
	"github.com/aweber-imbi/imbi-worker/internal/dispatch"
	"github.com/aweber-imbi/imbi-worker/internal/outcomes"
	"github.com/aweber-imbi/imbi-worker/internal/pluginreg"
	"github.com/aweber-imbi/imbi-worker/internal/registry"
	"github.com/aweber-imbi/imbi-worker/internal/streams"
	"github.com/aweber-imbi/imbi-worker/internal/worker"
	"github.com/aweber-imbi/imbi-worker/plugins"
	"github.com/aweber-imbi/imbi-worker/wire"
)

type options struct {
	n           int
	size        int
	concurrency int
	prefetch    int
	latencyDur  time.Duration
	cpuProfile  string
	memProfile  string
	gcPercent   int
	latencyDump string
	latencyRate float64
	verbose     bool
	phases      string
	// child mode: run only the worker against url (the worker-RSS phase).
	childURL string
	// child mode: the worker of the own-process latency phase.
	childLatencyURL string
}

func main() {
	var o options
	flag.IntVar(&o.n, "n", 100_000, "messages per throughput phase")
	flag.IntVar(&o.size, "size", 1229, "CloudEvent body size in bytes (1.2 KiB)")
	flag.IntVar(&o.concurrency, "concurrency", worker.DefaultConcurrency, "worker concurrency")
	flag.IntVar(&o.prefetch, "prefetch", 0, "worker prefetch (0: default)")
	flag.DurationVar(&o.latencyDur, "latency-duration", 5*time.Second, "how long the latency phase publishes")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the worker phases (worker runs only, not their preload)")
	flag.IntVar(&o.gcPercent, "gc-percent", worker.DefaultGCPercent, "GOGC of the whole benchmark process, as `imbi-worker run` sets it (ignored when GOGC is set)")
	flag.Float64Var(&o.latencyRate, "latency-rate", 0, "publish rate of the latency phase (0: half the measured maximum)")
	flag.BoolVar(&o.verbose, "v", false, "print the workers' warnings and connection errors to stderr")
	flag.StringVar(&o.latencyDump, "latency-dump", "", "write each latency sample (send time, latency) to this file")
	flag.StringVar(&o.memProfile, "memprofile", "", "write an allocation profile of the worker phases")
	flag.StringVar(&o.phases, "phases", "raw,off,on,outcomes,chain,latency,rss", "phases to run (outcomes: idempotency on with outcome events)")
	flag.StringVar(&o.childLatencyURL, "child-latency", "", "internal: run the worker of the own-process latency phase against this URL")
	flag.StringVar(&o.childURL, "child-worker", "", "internal: run the worker of the rss phase against this URL")
	flag.Parse()
	// Applied to the whole process (server, raw phase and workers alike),
	// so the ratio compares like with like; the child worker of the rss
	// phase gets it as a deployed worker would.
	gc := worker.TuneGC(o.gcPercent, 0, os.Getenv)
	if o.childLatencyURL != "" {
		if err := childLatency(o); err != nil {
			fmt.Fprintln(os.Stderr, "bench latency child:", err)
			os.Exit(1)
		}
		return
	}
	if o.childURL != "" {
		if err := childWorker(o); err != nil {
			fmt.Fprintln(os.Stderr, "bench child:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(o, gc); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// noop is the benchmark plugin: one action with a validated config.
type noop struct{ started func(plugins.Event) }

type noopConfig struct {
	Label string `json:"label" jsonschema:"minLength=1"`
}

func (p *noop) Manifest() plugins.PluginManifest {
	return plugins.PluginManifest{Slug: "bench", Name: "bench", PluginType: plugins.TypeWebhook, AuthType: plugins.AuthAPIToken, APIVersion: 1}
}

func (p *noop) Actions() ([]plugins.ActionDescriptor, error) {
	return []plugins.ActionDescriptor{plugins.MustAction("noop", "No-op", func(_ context.Context, in plugins.ActionInput[noopConfig]) error {
		p.started(in.Event)
		return nil
	})}, nil
}

type env struct {
	srv     *streams.Embedded
	nc      *nats.Conn
	js      jetstream.JetStream
	verbose bool
	// cpuProfile, when set, is where each worker phase writes a CPU
	// profile of its run only (preloading is the benchmark's cost, not the
	// worker's): <path> with the phase name before the extension.
	cpuProfile string
}

// startProfile starts the CPU profile of one phase; the returned func
// stops it. A no-op without -cpuprofile.
func (e *env) startProfile(phase string) (stop func(), err error) {
	if e.cpuProfile == "" {
		return func() {}, nil
	}
	ext := filepath.Ext(e.cpuProfile)
	f, err := os.Create(strings.TrimSuffix(e.cpuProfile, ext) + "." + phase + ext)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.Lookup("allocs").WriteTo(f, 0)
}

func run(o options, gc string) error {
	dir, err := os.MkdirTemp("", "imbi-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	srv, err := streams.StartEmbedded(streams.EmbeddedConfig{DataDir: dir})
	if err != nil {
		return err
	}
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return err
	}
	e := &env{srv: srv, nc: nc, js: js}
	fmt.Printf("imbi-worker benchmark: N=%d, body %d B, concurrency %d, GOMAXPROCS %d, %s, %s\n",
		o.n, o.size, o.concurrency, runtime.GOMAXPROCS(0), runtime.Version(), gc)

	e.cpuProfile = o.cpuProfile
	e.verbose = o.verbose

	rates := map[string]float64{}
	cpuPerMsg := map[string]float64{} // µs of process CPU per message, by phase
	phase := func(name string) bool { return slices.Contains(strings.Split(o.phases, ","), name) }
	if phase("raw") {
		r, err := e.raw(o)
		if err != nil {
			return fmt.Errorf("raw: %w", err)
		}
		rates["raw"] = r
		fmt.Printf("raw JetStream consume+ack     %9.0f msgs/s\n", r)
	}
	for _, name := range []string{"off", "on", "outcomes"} {
		if !phase(name) {
			continue
		}
		r, cpu, err := e.pipeline(o, name)
		if err != nil {
			return fmt.Errorf("pipeline %s: %w", name, err)
		}
		rates[name], cpuPerMsg[name] = r, cpu
		ratio := ""
		if raw := rates["raw"]; raw > 0 {
			ratio = fmt.Sprintf("  ratio %.2f", r/raw)
		}
		if name == "outcomes" {
			if on := rates["on"]; on > 0 {
				ratio += fmt.Sprintf("  vs idempotency on %.2f (outcome events cost %.1f %%)", r/on, 100*(1-r/on))
			}
			fmt.Printf("worker pipeline, on + outcomes %9.0f msgs/s%s\n", r, ratio)
			continue
		}
		fmt.Printf("worker pipeline, idempotency %-3s %9.0f msgs/s%s\n", name, r, ratio)
	}
	if phase("chain") {
		r, cpuPerStep, err := e.chainPipeline(o)
		if err != nil {
			return fmt.Errorf("chain: %w", err)
		}
		ratio := ""
		if on := rates["on"]; on > 0 {
			ratio = fmt.Sprintf("  ratio to single messages %.2f", r/on)
		}
		fmt.Printf("worker pipeline, 3-step chains %9.0f steps/s%s\n", r, ratio)
		if on := cpuPerMsg["on"]; on > 0 {
			fmt.Printf("  chain overhead per step: %+.1f µs CPU (%.1f per step vs %.1f per single message, idempotency on)\n",
				cpuPerStep-on, cpuPerStep, on)
		}
	}
	if o.memProfile != "" {
		if err := writeHeapProfile(o.memProfile); err != nil {
			return err
		}
	}
	if phase("latency") {
		maxRate := rates["on"]
		if maxRate == 0 {
			maxRate = rates["off"]
		}
		if maxRate == 0 {
			maxRate = 2000
		}
		target := maxRate / 2
		if o.latencyRate > 0 {
			target = o.latencyRate
		}
		p50, p99, sent, err := e.latency(o, target, true)
		if err != nil {
			return fmt.Errorf("latency: %w", err)
		}
		fmt.Printf("latency at %.0f msgs/s (half of max, idempotency on, %d msgs): p50 %s  p99 %s\n",
			target, sent, p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond))
		p50, p99, sent, err = e.latencyOwnProcess(o, target)
		if err != nil {
			return fmt.Errorf("latency, worker in its own process: %w", err)
		}
		fmt.Printf("  same, worker in its own process (%d msgs): p50 %s  p99 %s\n",
			sent, p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond))
		// Idempotency off at half of its own maximum: the pipeline without
		// the done-marker round trips (docs/performance.md: the tail with
		// idempotency on comes from those and the shared CPU).
		if off := rates["off"]; off > 0 && o.latencyRate == 0 {
			p50, p99, sent, err = e.latency(o, off/2, false)
			if err != nil {
				return fmt.Errorf("latency, idempotency off: %w", err)
			}
			fmt.Printf("latency at %.0f msgs/s (half of max, idempotency off, %d msgs): p50 %s  p99 %s\n",
				off/2, sent, p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond))
		}
	}
	if phase("rss") {
		rss, err := e.workerRSS(o)
		if err != nil {
			return fmt.Errorf("rss: %w", err)
		}
		fmt.Printf("peak RSS of the worker alone (own process, %d msgs, idempotency on): %.1f MiB\n", o.n, rss)
	}
	fmt.Printf("peak RSS of this process (embedded server + benchmark + in-process workers): %.1f MiB\n", peakRSSMiB())
	return nil
}

// workerRSS runs the full pipeline in a child process (as a deployed
// worker would be) over n pre-published messages and returns its VmHWM.
func (e *env) workerRSS(o options) (float64, error) {
	ctx := context.Background()
	sc := benchStreams("rss", true)
	if err := e.provision(ctx, sc); err != nil {
		return 0, err
	}
	if err := e.preload(ctx, sc, o.n, o.size, "rss-"); err != nil {
		return 0, err
	}
	args := []string{"-child-worker", e.srv.URL(), "-n", strconv.Itoa(o.n), "-concurrency", strconv.Itoa(o.concurrency), "-prefetch", strconv.Itoa(o.prefetch), "-gc-percent", strconv.Itoa(o.gcPercent)}
	out, err := exec.CommandContext(ctx, os.Args[0], args...).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%w: %s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "rss_mib="); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("child printed no rss: %s", out)
}

// childWorker is the worker process of the rss phase.
func childWorker(o options) error {
	nc, err := nats.Connect(o.childURL)
	if err != nil {
		return err
	}
	defer nc.Close()
	var ran atomic.Int64
	done := make(chan struct{})
	e := &env{nc: nc}
	w, err := e.buildWorker(nc, o, benchStreams("rss", true), func(plugins.Event) {
		if ran.Add(1) == int64(o.n) {
			close(done)
		}
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		cancel()
		return fmt.Errorf("ran %d of %d", ran.Load(), o.n)
	}
	cancel()
	if err := <-errc; err != nil {
		return err
	}
	fmt.Printf("rss_mib=%.1f\n", peakRSSMiB())
	return nil
}

// body builds one structured CE of about size bytes (payload padded).
func body(id string, size int, sentNanos int64) []byte {
	return benchdata.Event(id, size, sentNanos)
}

// bodyTemplate makes bodies by splicing the id and send time into one
// encoded event: the publisher (the gateway, another process in
// production) must not compete with the worker for the CPU by
// re-encoding a map per message, which cost ≈ 27 µs each.
type bodyTemplate struct{ parts [][]byte }

const (
	idMark   = "@@ID@@"
	sentMark = "@@SENT@@"
)

func newBodyTemplate(size int) *bodyTemplate {
	b := body(idMark, size, 0)
	b = bytes.Replace(b, []byte(`"sent":"0"`), []byte(`"sent":"`+sentMark+`"`), 1)
	var t bodyTemplate
	for len(b) > 0 {
		i, j := bytes.Index(b, []byte(idMark)), bytes.Index(b, []byte(sentMark))
		next, mark := i, idMark
		if i < 0 || (j >= 0 && j < i) {
			next, mark = j, sentMark
		}
		if next < 0 {
			t.parts = append(t.parts, b)
			break
		}
		t.parts = append(t.parts, b[:next], []byte(mark))
		b = b[next+len(mark):]
	}
	return &t
}

// build returns the body of one event; ids must need no JSON escaping.
func (t *bodyTemplate) build(id string, sentNanos int64) []byte {
	out := make([]byte, 0, 1400)
	for _, p := range t.parts {
		switch string(p) {
		case idMark:
			out = append(out, id...)
		case sentMark:
			out = strconv.AppendInt(out, sentNanos, 10)
		default:
			out = append(out, p...)
		}
	}
	return out
}

func (e *env) provision(ctx context.Context, sc streams.Config) error {
	_, err := streams.Apply(ctx, e.js, sc)
	return err
}

// preload publishes n messages (async, acked) to the phase's subject.
func (e *env) preload(ctx context.Context, sc streams.Config, n, size int, prefix string) error {
	bodies := newBodyTemplate(size)
	for i := range n {
		id := prefix + strconv.Itoa(i)
		m := nats.NewMsg(sc.SubjectPrefix + ".bench.noop")
		m.Header.Set(wire.HeaderContentType, wire.ContentTypeCE)
		m.Header.Set(wire.HeaderMsgID, id)
		m.Data = bodies.build(id, 0)
		if _, err := e.js.PublishMsgAsync(m); err != nil {
			return err
		}
	}
	select {
	case <-e.js.PublishAsyncComplete():
		return nil
	case <-time.After(2 * time.Minute):
		return fmt.Errorf("preload stalled")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// benchStreams gives each phase its own stream, subjects and bucket, so
// no phase pays for the previous one's cleanup (deleting a stream of
// 100k acked messages costs the server seconds of CPU).
func benchStreams(phase string, idem bool) streams.Config {
	sc := streams.DefaultConfig()
	sc.Stream = "BENCH_" + strings.ToUpper(phase)
	sc.SubjectPrefix = "bench." + phase
	sc.DLQStream = "BENCH_DLQ_" + strings.ToUpper(phase)
	sc.DLQPrefix = "bench.dlq." + phase
	sc.DoneBucket = "bench_done_" + phase
	sc.Idempotency = idem
	sc.MaxAckPending = 10_000
	// Outcome events only in the phase that measures them (pipeline).
	sc.Outcomes = false
	sc.OutcomesStream = "BENCH_OUTCOMES_" + strings.ToUpper(phase)
	sc.OutcomesPrefix = "benchout." + phase
	return sc
}

// raw: the ceiling — consume and ack with nothing in between.
func (e *env) raw(o options) (float64, error) {
	ctx := context.Background()
	sc := benchStreams("raw", false)
	if err := e.provision(ctx, sc); err != nil {
		return 0, err
	}
	if err := e.preload(ctx, sc, o.n, o.size, "raw-"); err != nil {
		return 0, err
	}
	// Its own connection, closed afterwards, as the worker phases get theirs.
	rnc, err := nats.Connect(e.srv.URL())
	if err != nil {
		return 0, err
	}
	defer rnc.Close()
	rjs, err := jetstream.New(rnc)
	if err != nil {
		return 0, err
	}
	cons, err := rjs.Consumer(ctx, sc.Stream, sc.Consumer)
	if err != nil {
		return 0, err
	}
	var got atomic.Int64
	done := make(chan struct{})
	start, cpu0 := time.Now(), cpuTime()
	cc, err := cons.Consume(func(m jetstream.Msg) {
		_ = m.Ack()
		if got.Add(1) == int64(o.n) {
			close(done)
		}
	})
	if err != nil {
		return 0, err
	}
	<-done
	cc.Stop()
	if err := e.waitEmpty(ctx, sc.Stream); err != nil {
		return 0, err
	}
	elapsed := time.Since(start)
	fmt.Printf("  raw: %.1f µs CPU per message (process: server + client)\n", float64((cpuTime()-cpu0).Microseconds())/float64(o.n))
	return float64(o.n) / elapsed.Seconds(), nil
}

func (e *env) waitEmpty(ctx context.Context, stream string) error {
	s, err := e.js.Stream(ctx, stream)
	if err != nil {
		return err
	}
	start := time.Now()
	deadline := start.Add(2 * time.Minute)
	nextReport := start.Add(2 * time.Second)
	for time.Now().Before(deadline) {
		info, err := s.Info(ctx)
		if err != nil {
			return err
		}
		if info.State.Msgs == 0 {
			return nil
		}
		if e.verbose && time.Now().After(nextReport) {
			// A stall: show where the messages are (never delivered, or
			// delivered and unacknowledged) and whether pulls are waiting.
			nextReport = time.Now().Add(2 * time.Second)
			for name := range s.ListConsumers(ctx).Info() {
				fmt.Fprintf(os.Stderr, "stall %s after %s: stream msgs %d, consumer %s pending %d ack-pending %d redelivered %d waiting pulls %d delivered %d ack floor %d\n",
					stream, time.Since(start).Round(time.Millisecond), info.State.Msgs, name.Name, name.NumPending, name.NumAckPending,
					name.NumRedelivered, name.NumWaiting, name.Delivered.Consumer, name.AckFloor.Consumer)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("stream %s not drained", stream)
}

// newWorker builds a worker on its own connection (as a separate process
// would have); the returned close func closes it.
func (e *env) newWorker(o options, sc streams.Config, started func(plugins.Event)) (*worker.Worker, func(), error) {
	wnc, err := nats.Connect(e.srv.URL(), nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
		if o.verbose {
			fmt.Fprintf(os.Stderr, "worker connection: %v\n", err)
		}
	}))
	if err != nil {
		return nil, nil, err
	}
	w, err := e.buildWorker(wnc, o, sc, started)
	if err != nil {
		wnc.Close()
		return nil, nil, err
	}
	return w, wnc.Close, nil
}

func (e *env) buildWorker(nc *nats.Conn, o options, sc streams.Config, started func(plugins.Event)) (*worker.Worker, error) {
	p := &noop{started: started}
	reg := registry.New(func() []pluginreg.Registration {
		return []pluginreg.Registration{{Name: "bench", Load: func() (any, error) { return p, nil }}}
	})
	if _, err := reg.Load(); err != nil {
		return nil, err
	}
	var hooks worker.Hooks
	if sc.Outcomes {
		js, err := jetstream.New(nc)
		if err != nil {
			return nil, err
		}
		hooks = outcomes.NewHook(js, outcomes.Config{Prefix: sc.OutcomesPrefix, WorkerID: "bench", Logger: benchLogger(o)}).Hooks(hooks)
	}
	return worker.New(nc, &dispatch.Dispatcher{Registry: reg}, worker.Config{
		Streams: sc, Concurrency: o.concurrency, Prefetch: o.prefetch, Idempotency: sc.Idempotency,
		Logger: benchLogger(o), Hooks: hooks,
	})
}

// pipeline: N pre-published messages through the full worker; prefix
// is off (idempotency off), on, or outcomes (on, with outcome events).
// It returns the rate and the process CPU per message (µs).
func (e *env) pipeline(o options, prefix string) (float64, float64, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sc := benchStreams(prefix, prefix != "off")
	sc.Outcomes = prefix == "outcomes"
	if err := e.provision(ctx, sc); err != nil {
		return 0, 0, err
	}
	if err := e.preload(ctx, sc, o.n, o.size, prefix+"-"); err != nil {
		return 0, 0, err
	}
	elapsed, cpuPer, err := e.drain(ctx, o, sc, prefix, o.n, "actions")
	if err != nil {
		return 0, 0, err
	}
	fmt.Printf("  %s: %.1f µs CPU per message (process: server + worker)\n", prefix, cpuPer)
	if sc.Outcomes {
		s, err := e.js.Stream(context.Background(), sc.OutcomesStream)
		if err != nil {
			return 0, 0, err
		}
		info, err := s.Info(context.Background())
		if err != nil {
			return 0, 0, err
		}
		if info.State.Msgs != uint64(o.n) {
			return 0, 0, fmt.Errorf("%d outcome events stored, want %d", info.State.Msgs, o.n)
		}
	}
	return float64(o.n) / elapsed.Seconds(), cpuPer, nil
}

// drain runs a worker on sc's stream until the stream is empty (profiled
// as profile) and checks that it ran want actions (unit names them in the
// error). It returns the time taken and the process CPU per action (µs).
func (e *env) drain(ctx context.Context, o options, sc streams.Config, profile string, want int, unit string) (time.Duration, float64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var ran atomic.Int64
	w, closeConn, err := e.newWorker(o, sc, func(plugins.Event) { ran.Add(1) })
	if err != nil {
		return 0, 0, err
	}
	defer closeConn()
	stopProfile, err := e.startProfile(profile)
	if err != nil {
		return 0, 0, err
	}
	start, cpu0 := time.Now(), cpuTime()
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	// A chain step's continuation is stored before the step is acked, so
	// the stream is empty only once every chain has finished.
	if err := e.waitEmpty(ctx, sc.Stream); err != nil {
		return 0, 0, err
	}
	elapsed := time.Since(start)
	stopProfile()
	cpuPer := float64((cpuTime() - cpu0).Microseconds()) / float64(want)
	cancel()
	if err := <-errc; err != nil {
		return 0, 0, err
	}
	if ran.Load() != int64(want) {
		return 0, 0, fmt.Errorf("ran %d %s, want %d", ran.Load(), unit, want)
	}
	return elapsed, cpuPer, nil
}

// latency publishes at rate for o.latencyDur and records
// publish→action-start per message.
func (e *env) latency(o options, rate float64, idempotency bool) (p50, p99 time.Duration, sent int, err error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	name := "latency"
	if !idempotency {
		name = "latencyoff"
	}
	sc := benchStreams(name, idempotency)
	if err := e.provision(ctx, sc); err != nil {
		return 0, 0, 0, err
	}
	var mu sync.Mutex
	var lat []time.Duration
	var sentAt []int64 // for -latency-dump
	w, closeConn, err := e.newWorker(o, sc, func(ev plugins.Event) {
		now := time.Now().UnixNano()
		s, _ := ev.Payload["sent"].(string)
		ns, _ := strconv.ParseInt(s, 10, 64)
		mu.Lock()
		lat = append(lat, time.Duration(now-ns))
		sentAt = append(sentAt, ns)
		mu.Unlock()
	})
	if err != nil {
		return 0, 0, 0, err
	}
	defer closeConn()
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	time.Sleep(200 * time.Millisecond)

	total, err := e.publishAt(o, sc, rate)
	if err != nil {
		return 0, 0, 0, err
	}
	if err := e.waitEmpty(ctx, sc.Stream); err != nil {
		return 0, 0, 0, err
	}
	cancel()
	<-errc
	mu.Lock()
	defer mu.Unlock()
	if len(lat) == 0 {
		return 0, 0, 0, fmt.Errorf("no samples")
	}
	if o.latencyDump != "" {
		// "<ms since the first send> <latency µs>" per message, to see
		// whether the tail is spread out or clustered (stalls).
		var b strings.Builder
		for i := range lat {
			fmt.Fprintf(&b, "%.3f %d\n", float64(sentAt[i]-sentAt[0])/1e6, lat[i].Microseconds())
		}
		if err := os.WriteFile(o.latencyDump, []byte(b.String()), 0o644); err != nil {
			return 0, 0, 0, err
		}
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	return pct(0.50), pct(0.99), total, nil
}

// benchLogger discards the workers' logs unless -v (warnings to stderr).
func benchLogger(o options) *slog.Logger {
	if o.verbose {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// publishAt publishes o.latencyDur worth of events at rate from a
// separate connection (as the gateway would) and waits for their
// acknowledgements; each body carries its send time.
func (e *env) publishAt(o options, sc streams.Config, rate float64) (int, error) {
	pnc, err := nats.Connect(e.srv.URL())
	if err != nil {
		return 0, err
	}
	defer pnc.Close()
	pjs, err := jetstream.New(pnc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return 0, err
	}
	interval := time.Duration(float64(time.Second) / rate)
	total := int(rate * o.latencyDur.Seconds())
	bodies := newBodyTemplate(o.size)
	start := time.Now()
	for i := range total {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		id := "lat-" + strconv.Itoa(i)
		m := nats.NewMsg(sc.SubjectPrefix + ".bench.noop")
		m.Header.Set(wire.HeaderContentType, wire.ContentTypeCE)
		m.Header.Set(wire.HeaderMsgID, id)
		m.Data = bodies.build(id, time.Now().UnixNano())
		if _, err := pjs.PublishMsgAsync(m); err != nil {
			return 0, err
		}
	}
	select {
	case <-pjs.PublishAsyncComplete():
	case <-time.After(time.Minute):
		return 0, fmt.Errorf("publishes not acknowledged")
	}
	return total, nil
}

// latencyOwnProcess is the latency phase with the worker in a child
// process, as deployed: its garbage collector and scheduler no longer
// share the benchmark process with the embedded server (whose heap, with
// the earlier phases' streams, is ten times the worker's) and the
// publisher. Same server, same rate, same publisher.
func (e *env) latencyOwnProcess(o options, rate float64) (p50, p99 time.Duration, sent int, err error) {
	ctx := context.Background()
	sc := benchStreams("latchild", true)
	if err := e.provision(ctx, sc); err != nil {
		return 0, 0, 0, err
	}
	cmd := exec.CommandContext(ctx, os.Args[0], "-child-latency", e.srv.URL(), "-concurrency", strconv.Itoa(o.concurrency),
		"-prefetch", strconv.Itoa(o.prefetch), "-gc-percent", strconv.Itoa(o.gcPercent))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 0, 0, 0, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, 0, 0, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return 0, 0, 0, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	out := bufio.NewScanner(stdout)
	if !out.Scan() || out.Text() != "ready" {
		return 0, 0, 0, fmt.Errorf("child worker did not start: %q", out.Text())
	}
	if sent, err = e.publishAt(o, sc, rate); err != nil {
		return 0, 0, 0, err
	}
	if err := e.waitEmpty(ctx, sc.Stream); err != nil {
		return 0, 0, 0, err
	}
	_ = stdin.Close() // tells the child to stop and report
	if !out.Scan() {
		return 0, 0, 0, fmt.Errorf("child worker reported nothing")
	}
	var n int
	var p50ns, p99ns int64
	if _, err := fmt.Sscanf(out.Text(), "n=%d p50_ns=%d p99_ns=%d", &n, &p50ns, &p99ns); err != nil {
		return 0, 0, 0, fmt.Errorf("child report %q: %w", out.Text(), err)
	}
	if n != sent {
		return 0, 0, 0, fmt.Errorf("child ran %d actions, want %d", n, sent)
	}
	return time.Duration(p50ns), time.Duration(p99ns), sent, nil
}

// childLatency is the worker process of latencyOwnProcess: it prints
// "ready" once consuming, records publish→action-start per message until
// stdin closes, then prints the count and percentiles.
func childLatency(o options) error {
	nc, err := nats.Connect(o.childLatencyURL)
	if err != nil {
		return err
	}
	defer nc.Close()
	var mu sync.Mutex
	var lat []time.Duration
	e := &env{nc: nc}
	w, err := e.buildWorker(nc, o, benchStreams("latchild", true), func(ev plugins.Event) {
		now := time.Now().UnixNano()
		s, _ := ev.Payload["sent"].(string)
		ns, _ := strconv.ParseInt(s, 10, 64)
		mu.Lock()
		lat = append(lat, time.Duration(now-ns))
		mu.Unlock()
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	for w.Ready() != nil {
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin) // until the parent closes it
	cancel()
	if err := <-errc; err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lat) == 0 {
		return fmt.Errorf("no samples")
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	fmt.Printf("n=%d p50_ns=%d p99_ns=%d\n", len(lat), pct(0.50).Nanoseconds(), pct(0.99).Nanoseconds())
	return nil
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSSMiB is VmHWM from /proc (Linux).
func peakRSSMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return -1
}
