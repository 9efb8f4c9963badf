// Command peers is `make bench-peers`: imbi-worker against its peers, each
// contestant in its own process on one standalone nats-server.
//
// For every round and contestant it starts a fresh nats-server (JetStream,
// a new store directory, 127.0.0.1 only), provisions the worker's stream,
// bucket and durable consumer and pre-publishes N benchmark CloudEvents
// (the main module's internal/bench/prepublish), starts the contestant and
// polls the consumer's info until every message is acknowledged. The drain
// runs from the first poll that sees a delivery to the first that sees the
// ack floor at N; the contestant's and the server's CPU (utime+stime from
// /proc/<pid>/stat) are read at those two polls, the contestant's peak RSS
// (VmHWM) at the end. The contestants' order rotates every round.
//
// A contestant is one entry of the contestants list below: a name, a
// binary and its arguments, extra environment; a row that runs the events
// through a Python plugin host (wire contract §D) also names the events'
// handler and its Go baseline. For such a row the harness starts one
// imbi-plugin-host (-plugin-host) after the pre-publish and before the
// contestant, waits until it answers $SRV.PING, counts its CPU with the
// contestant's and checks after the drain, from its $SRV.STATS, that its
// run endpoint served every message without an error. For every row, the
// dead-letter stream must be empty after the drain.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// contestant is one process that drains the consumer. In Args and Env,
// {{URL}} is the server's URL.
type contestant struct {
	Name string
	Bin  string // a file in -bin-dir
	Args []string
	Env  []string
	// Handler is the events' handler (prepublish -handler); "" is the Go
	// no-op bench#noop.
	Handler string
	// Host: one imbi-plugin-host serves Handler.
	Host bool
	// Baseline is the row this one's overhead per message is reported
	// against, every round and as the median of the rounds' paired ratios
	// (a remote row: the same worker flags, the Go no-op; worker: the same
	// less --no-outcomes).
	Baseline string
}

// contestants: adding one is one entry.
var contestants = []contestant{
	{Name: "raw", Bin: "raw", Args: []string{"-url", "{{URL}}"}},
	{Name: "watermill", Bin: "watermill", Args: []string{"-url", "{{URL}}"}},
	{Name: "worker-off", Bin: "imbi-worker-bench", Args: workerArgs("--no-idempotency")},
	// The default mode against itself less the outcome events (v1.1 §C):
	// their cost, reported as a paired ratio per round (issue 16's target
	// is worker >= 0.85 x worker-outcomes-off).
	{Name: "worker", Bin: "imbi-worker-bench", Args: workerArgs(), Baseline: "worker-outcomes-off"},
	{Name: "worker-outcomes-off", Bin: "imbi-worker-bench", Args: workerArgs("--no-outcomes")},
	// The worker and worker-off rows with the action remote: the example
	// Python plugin's no-op (examples/python-plugin, example-py#noop)
	// served by one imbi-plugin-host as shipped (issue 17). --remote-plugins
	// on, as docs/python-plugins.md asks of a deployment with hosts.
	{Name: "worker-remote-off", Bin: "imbi-worker-bench", Args: workerArgs("--no-idempotency", "--remote-plugins", "on"),
		Handler: remoteHandler, Host: true, Baseline: "worker-off"},
	{Name: "worker-remote", Bin: "imbi-worker-bench", Args: workerArgs("--remote-plugins", "on"),
		Handler: remoteHandler, Host: true, Baseline: "worker"},
}

// remoteHandler is the remote rows' no-op action; its handler_config
// accepts the Go no-op's {"label": "bench"}.
const remoteHandler = "example-py#noop"

// workerArgs runs the shipped worker as deployed (telemetry as shipped,
// the admin server on a free port), bound to the objects prepublish made.
func workerArgs(extra ...string) []string {
	return append([]string{"run", "--nats-url", "{{URL}}", "--no-provision", "--admin-addr", "127.0.0.1:0",
		"--log-format", "json"}, extra...)
}

type options struct {
	n              int
	rounds         int
	only           string
	natsServer     string
	prepublish     string
	binDir         string
	pluginHost     string
	hostArgs       string
	jsonOut        string
	profileDir     string
	profileSeconds int
	tap            bool
	workerArgs     string
	also           []string
	poll           time.Duration
	timeout        time.Duration
}

func main() {
	var o options
	flag.IntVar(&o.n, "n", 100_000, "events per drain")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds (the order rotates every round)")
	flag.StringVar(&o.only, "contestants", "", "comma-separated contestant names (default: all)")
	flag.StringVar(&o.natsServer, "nats-server", "nats-server", "nats-server binary")
	flag.StringVar(&o.prepublish, "prepublish", "", "the main module's internal/bench/prepublish binary")
	flag.StringVar(&o.binDir, "bin-dir", "", "directory of the contestant binaries")
	flag.StringVar(&o.pluginHost, "plugin-host", "", "the imbi-plugin-host executable of a venv with examples/python-plugin installed (the worker-remote rows; scripts/bench-peers.sh sets it)")
	flag.StringVar(&o.hostArgs, "host-args", "", "extra arguments for imbi-plugin-host, e.g. \"--concurrency 32\" (experiments)")
	flag.StringVar(&o.jsonOut, "json", "", "also write every run and the medians as JSON to this file")
	flag.StringVar(&o.profileDir, "profile", "", "write CPU profiles of contestant and server during each drain to this directory (perturbs the run)")
	flag.IntVar(&o.profileSeconds, "profile-seconds", 4, "length of each CPU profile")
	flag.BoolVar(&o.tap, "tap", false, "count the contestant's JetStream API traffic by kind from a tap subscription (perturbs the run: the server delivers every counted message once more)")
	flag.StringVar(&o.workerArgs, "worker-args", "", "extra arguments for the worker contestants, e.g. \"--prefetch 256\" (experiments)")
	flag.Func("also", "an extra contestant (repeatable): \"name=base extra args\", e.g. \"off-p256=worker-off --prefetch 256\"; NAME=value tokens go to its environment, bin=FILE runs another binary of -bin-dir, vs=ROW reports it against ROW (paired per round)", func(v string) error {
		o.also = append(o.also, v)
		return nil
	})
	flag.DurationVar(&o.poll, "poll", 5*time.Millisecond, "consumer info poll interval")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Minute, "give up on a drain after this long")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench-peers:", err)
		os.Exit(1)
	}
}

// result is one drain.
type result struct {
	Round       int     `json:"round"`
	Contestant  string  `json:"contestant"`
	Seconds     float64 `json:"seconds"`
	MsgsPerSec  float64 `json:"msgs_per_sec"`
	CPUUsPerMsg float64 `json:"contestant_cpu_us_per_msg"`
	SrvUsPerMsg float64 `json:"server_cpu_us_per_msg"`
	// The plugin host's CPU per message and cores (remote rows).
	HostUsPerMsg float64 `json:"host_cpu_us_per_msg,omitempty"`
	HostCores    float64 `json:"host_cores,omitempty"`
	// HostRequests is the host's run requests in the round ($SRV.STATS;
	// N when no run was retried).
	HostRequests int `json:"host_run_requests,omitempty"`
	// Redelivered is how many deliveries were redeliveries (consumer
	// minus stream sequence at the end: retries, e.g. a remote row's host
	// at capacity answering unavailable).
	Redelivered int     `json:"redelivered"`
	RSSMiB      float64 `json:"contestant_max_rss_mib"`
	// From the server's /connz: what the contestant's connection sent
	// (pull requests, acks, KV writes and lookups) and received
	// (deliveries, replies, heartbeats) per message, during the drain.
	ConnInPerMsg  float64 `json:"conn_in_msgs_per_msg"`
	ConnOutPerMsg float64 `json:"conn_out_msgs_per_msg"`
	// CPU busy (cores) of contestant and server during the drain.
	ContestantCores float64 `json:"contestant_cores"`
	// read(2)/write(2)-family system calls per message (/proc/<pid>/io
	// syscr+syscw) of contestant and server during the drain.
	SyscallsPerMsg    float64 `json:"contestant_syscalls_per_msg"`
	SrvSyscallsPerMsg float64 `json:"server_syscalls_per_msg"`
	// Means over the drain's consumer-info polls: messages delivered and
	// not yet acked (in the contestant's buffer, intake and slots), and
	// pull requests waiting at the server.
	MeanAckPending float64        `json:"mean_ack_pending"`
	MeanWaiting    float64        `json:"mean_waiting_pulls"`
	ServerCores    float64        `json:"server_cores"`
	Tap            map[string]int `json:"tap,omitempty"`
	// The whole host during the drain (/proc/stat): cores busy (every
	// process, this harness included) and cores stolen by the hypervisor.
	// A round with steal is a round on a shared host: its rate says more
	// about the neighbours than about the contestant.
	HostBusyCores  float64 `json:"host_busy_cores"`
	HostStealCores float64 `json:"host_steal_cores"`
}

func run(o options) error {
	if o.prepublish == "" || o.binDir == "" {
		return errors.New("-prepublish and -bin-dir are required (scripts/bench-peers.sh sets them)")
	}
	var extra []contestant
	for _, a := range o.also {
		c, err := derive(a)
		if err != nil {
			return err
		}
		contestants = append(contestants, c)
		extra = append(extra, c)
	}
	list := contestants
	if o.only != "" {
		list = nil
		for name := range strings.SplitSeq(o.only, ",") {
			i := slices.IndexFunc(contestants, func(c contestant) bool { return c.Name == name })
			if i < 0 {
				return fmt.Errorf("unknown contestant %q", name)
			}
			list = append(list, contestants[i])
		}
		// An -also row runs whether or not -contestants names it.
		for _, c := range extra {
			if !slices.ContainsFunc(list, func(l contestant) bool { return l.Name == c.Name }) {
				list = append(list, c)
			}
		}
	}
	for _, c := range list {
		if c.Host && o.pluginHost == "" {
			return fmt.Errorf("contestant %s needs -plugin-host (imbi-plugin-host with examples/python-plugin; scripts/bench-peers.sh builds the venv)", c.Name)
		}
	}
	if o.profileDir != "" {
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			return err
		}
	}
	ver, _ := exec.Command(o.natsServer, "--version").Output()
	fmt.Printf("bench-peers: N=%d, %d rounds, %s, %d CPUs, load before %s\n", o.n, o.rounds,
		strings.TrimSpace(string(ver)), numCPU(), loadAvg())
	var all []result
	for r := range o.rounds {
		order := slices.Clone(list)
		k := r % len(order)
		order = append(order[k:], order[:k]...)
		var round []result
		for _, c := range order {
			res, err := drain(o, c, r+1)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", r+1, c.Name, err)
			}
			round = append(round, res)
			fmt.Printf("  round %d %-12s %8.0f msgs/s  %6.1f + %6.1f µs/msg  RSS %6.1f MiB  conn in/out %.3f/%.3f per msg  cores %.2f + %.2f  syscalls/msg %.2f + %.2f  mean ack-pending %.1f, waiting pulls %.2f  redelivered %d  host busy %.2f, steal %.2f cores\n",
				r+1, c.Name, res.MsgsPerSec, res.CPUUsPerMsg, res.SrvUsPerMsg, res.RSSMiB, res.ConnInPerMsg, res.ConnOutPerMsg,
				res.ContestantCores, res.ServerCores, res.SyscallsPerMsg, res.SrvSyscallsPerMsg,
				res.MeanAckPending, res.MeanWaiting, res.Redelivered, res.HostBusyCores, res.HostStealCores)
			if c.Host {
				fmt.Printf("    plugin host: %.1f µs/msg, %.2f cores, %d run requests\n", res.HostUsPerMsg, res.HostCores, res.HostRequests)
			}
			if len(res.Tap) > 0 {
				fmt.Printf("    tap: %s\n", tapLine(res.Tap, o.n))
			}
		}
		all = append(all, round...)
		printTable(fmt.Sprintf("round %d (order %s)", r+1, names(order)), round, list)
	}
	med := medians(list, all)
	printTable(fmt.Sprintf("median of %d rounds, load after %s", o.rounds, loadAvg()), med, list)
	pairs := pairedRatios(list, all)
	printPaired(pairs)
	if o.jsonOut != "" {
		b, err := json.MarshalIndent(map[string]any{"n": o.n, "rounds": all, "median": med, "paired": pairs}, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(o.jsonOut, b, 0o644)
	}
	return nil
}

// derive builds an -also contestant from an existing one.
func derive(spec string) (contestant, error) {
	name, rest, ok := strings.Cut(spec, "=")
	f := strings.Fields(rest)
	if !ok || name == "" || len(f) == 0 {
		return contestant{}, fmt.Errorf("-also %q: want \"name=base args...\"", spec)
	}
	i := slices.IndexFunc(contestants, func(c contestant) bool { return c.Name == f[0] })
	if i < 0 {
		return contestant{}, fmt.Errorf("-also %q: unknown base %q", spec, f[0])
	}
	c := contestants[i]
	c.Name, c.Args, c.Env = name, slices.Clone(c.Args), slices.Clone(c.Env)
	for _, tok := range f[1:] {
		if v, ok := strings.CutPrefix(tok, "bin="); ok && v != "" {
			c.Bin = v
			continue
		}
		if v, ok := strings.CutPrefix(tok, "vs="); ok && v != "" {
			c.Baseline = v
			continue
		}
		if k, _, isEnv := strings.Cut(tok, "="); isEnv && k != "" && strings.ToUpper(k) == k && !strings.HasPrefix(k, "-") {
			c.Env = append(c.Env, tok)
		} else {
			c.Args = append(c.Args, tok)
		}
	}
	return c, nil
}

func names(cs []contestant) string {
	var s []string
	for _, c := range cs {
		s = append(s, c.Name)
	}
	return strings.Join(s, ",")
}

func printTable(title string, rs []result, list []contestant) {
	rate := map[string]float64{}
	byName := map[string]result{}
	for _, r := range rs {
		rate[r.Contestant] = r.MsgsPerSec
		byName[r.Contestant] = r
	}
	fmt.Printf("\n%s\n", title)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "contestant\tmsgs/s\tCPU µs/msg contestant\tplugin host\tserver\ttotal\tmax RSS MiB\tvs watermill\tvs raw\t")
	for _, r := range rs {
		ratio := func(of string) string {
			if v := rate[of]; v > 0 && r.Contestant != of {
				return fmt.Sprintf("%.2f", r.MsgsPerSec/v)
			}
			return ""
		}
		host := ""
		if r.HostUsPerMsg > 0 {
			host = fmt.Sprintf("%.1f", r.HostUsPerMsg)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.1f\t%s\t%.1f\t%.1f\t%.1f\t%s\t%s\t\n", r.Contestant, r.MsgsPerSec, r.CPUUsPerMsg, host, r.SrvUsPerMsg,
			r.totalUsPerMsg(), r.RSSMiB, ratio("watermill"), ratio("raw"))
	}
	tw.Flush()
	for _, c := range list {
		r, ok := byName[c.Name]
		b, okb := byName[c.Baseline]
		if c.Baseline == "" || !ok || !okb {
			continue
		}
		o := overheadOf(r, b)
		fmt.Printf("%s against %s: %.2fx the rate; +%.1f µs wall per message (1/rate), +%.1f µs CPU per message (worker %+.1f, plugin host %+.1f, server %+.1f)\n",
			c.Name, c.Baseline, o.RateRatio, o.WallUs, o.CPUUs, o.WorkerUs, o.HostUs, o.ServerUs)
	}
	fmt.Println()
}

// paired is a row against its baseline, round by round (both drains of
// a round ran back to back, in that round's rotated order), and the
// medians of those per-round figures.
type paired struct {
	Contestant string     `json:"contestant"`
	Baseline   string     `json:"baseline"`
	Rounds     []overhead `json:"rounds"`
	Median     overhead   `json:"median"`
	// RatioCI is a distribution-free confidence interval of the median
	// rate ratio (medianCI); zero Coverage: too few rounds for one.
	RatioCI interval `json:"rate_ratio_ci"`
}

// interval is a confidence interval and its coverage.
type interval struct {
	Lo       float64 `json:"lo"`
	Hi       float64 `json:"hi"`
	Coverage float64 `json:"coverage"`
}

// medianCI is the narrowest order-statistic interval [x(k), x(n+1−k)] of
// v that covers the median with at least the given probability, whatever
// the distribution (the count of values below the median is
// Binomial(n, ½)). With fewer than 6 values no interval reaches 95 %: the
// zero interval. On a shared host one round's ratio swings by ±15 %;
// this says how far the median of the rounds may be from the truth.
func medianCI(v []float64, want float64) interval {
	n := len(v)
	if n == 0 {
		return interval{}
	}
	v = slices.Clone(v)
	slices.Sort(v)
	// tail[j] = P(X ≤ j) for X ~ Binomial(n, ½).
	tail := make([]float64, n+1)
	p, c := math.Pow(0.5, float64(n)), 1.0
	for j := 0; j <= n; j++ {
		if j > 0 {
			c = c * float64(n-j+1) / float64(j)
			tail[j] = tail[j-1]
		}
		tail[j] += c * p
	}
	var best interval
	for k := 1; k <= n/2; k++ {
		cov := 1 - 2*tail[k-1]
		if cov < want {
			break
		}
		best = interval{Lo: v[k-1], Hi: v[n-k], Coverage: cov}
	}
	return best
}

// pairedRatios pairs every row that has a baseline with it, per round;
// the medians are of the rounds' ratios and differences, not ratios of
// medians (a round is the nearest A/B the shared machine allows).
func pairedRatios(list []contestant, all []result) []paired {
	var out []paired
	for _, c := range list {
		if c.Baseline == "" {
			continue
		}
		p := paired{Contestant: c.Name, Baseline: c.Baseline}
		for _, r := range all {
			if r.Contestant != c.Name {
				continue
			}
			i := slices.IndexFunc(all, func(b result) bool { return b.Round == r.Round && b.Contestant == c.Baseline })
			if i < 0 {
				continue
			}
			o := overheadOf(r, all[i])
			o.Round = r.Round
			o.StealCores = max(r.HostStealCores, all[i].HostStealCores)
			p.Rounds = append(p.Rounds, o)
		}
		if len(p.Rounds) == 0 {
			continue
		}
		values := func(f func(overhead) float64) []float64 {
			v := make([]float64, len(p.Rounds))
			for i, o := range p.Rounds {
				v[i] = f(o)
			}
			return v
		}
		med := func(f func(overhead) float64) float64 { return median(values(f)) }
		rate := func(o overhead) float64 { return o.RateRatio }
		p.Median = overhead{
			RateRatio: med(rate),
			WallUs:    med(func(o overhead) float64 { return o.WallUs }),
			CPUUs:     med(func(o overhead) float64 { return o.CPUUs }),
			WorkerUs:  med(func(o overhead) float64 { return o.WorkerUs }),
			HostUs:    med(func(o overhead) float64 { return o.HostUs }),
			ServerUs:  med(func(o overhead) float64 { return o.ServerUs }),
		}
		p.RatioCI = medianCI(values(rate), 0.95)
		out = append(out, p)
	}
	return out
}

func printPaired(ps []paired) {
	if len(ps) == 0 {
		return
	}
	fmt.Println("paired per round (row / baseline in the same round; * = a drain lost ≥ 0.05 cores to steal):")
	for _, p := range ps {
		var rs []string
		for _, o := range p.Rounds {
			mark := ""
			if o.StealCores >= stolenRound {
				mark = "*"
			}
			rs = append(rs, fmt.Sprintf("r%d %.2f%s", o.Round, o.RateRatio, mark))
		}
		m := p.Median
		ci := "too few rounds for a 95 % interval"
		if c := p.RatioCI; c.Coverage > 0 {
			ci = fmt.Sprintf("%.0f %% interval of the median %.2f–%.2f", 100*c.Coverage, c.Lo, c.Hi)
		}
		fmt.Printf("  %s / %s: rate ratio %s; median %.2fx (%s), CPU per message %+.1f µs (worker %+.1f, plugin host %+.1f, server %+.1f)\n",
			p.Contestant, p.Baseline, strings.Join(rs, ", "), m.RateRatio, ci, m.CPUUs, m.WorkerUs, m.HostUs, m.ServerUs)
	}
	fmt.Println()
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// totalUsPerMsg is the CPU per message of every process on the path:
// contestant, plugin host (remote rows) and server.
func (r result) totalUsPerMsg() float64 { return r.CPUUsPerMsg + r.HostUsPerMsg + r.SrvUsPerMsg }

// overhead is what a row costs per message over its baseline.
type overhead struct {
	Round     int     `json:"round,omitempty"`
	RateRatio float64 `json:"rate_ratio"`        // rate / baseline's rate
	WallUs    float64 `json:"wall_us_per_msg"`   // 1e6/rate − 1e6/baseline rate
	CPUUs     float64 `json:"cpu_us_per_msg"`    // CPU µs/msg difference, every process
	WorkerUs  float64 `json:"worker_us_per_msg"` // … the contestant's
	HostUs    float64 `json:"host_us_per_msg"`   // … the plugin host's
	ServerUs  float64 `json:"server_us_per_msg"` // … the server's
	// StealCores: the more stolen of the two drains (host_steal_cores).
	StealCores float64 `json:"steal_cores,omitempty"`
}

// stolenRound: a round whose drains lost at least this many cores to the
// hypervisor is marked; its ratio says more about the neighbours.
const stolenRound = 0.05

func overheadOf(r, base result) overhead {
	return overhead{
		RateRatio: r.MsgsPerSec / base.MsgsPerSec,
		WallUs:    1e6/r.MsgsPerSec - 1e6/base.MsgsPerSec,
		CPUUs:     r.totalUsPerMsg() - base.totalUsPerMsg(),
		WorkerUs:  r.CPUUsPerMsg - base.CPUUsPerMsg,
		HostUs:    r.HostUsPerMsg - base.HostUsPerMsg,
		ServerUs:  r.SrvUsPerMsg - base.SrvUsPerMsg,
	}
}

func medians(list []contestant, all []result) []result {
	var out []result
	for _, c := range list {
		var rs []result
		for _, r := range all {
			if r.Contestant == c.Name {
				rs = append(rs, r)
			}
		}
		m := result{Contestant: c.Name}
		med := func(f func(result) float64) float64 {
			v := make([]float64, len(rs))
			for i, r := range rs {
				v[i] = f(r)
			}
			return median(v)
		}
		m.MsgsPerSec = med(func(r result) float64 { return r.MsgsPerSec })
		m.Seconds = med(func(r result) float64 { return r.Seconds })
		m.CPUUsPerMsg = med(func(r result) float64 { return r.CPUUsPerMsg })
		m.SrvUsPerMsg = med(func(r result) float64 { return r.SrvUsPerMsg })
		m.HostUsPerMsg = med(func(r result) float64 { return r.HostUsPerMsg })
		m.HostCores = med(func(r result) float64 { return r.HostCores })
		m.Redelivered = int(med(func(r result) float64 { return float64(r.Redelivered) }))
		m.RSSMiB = med(func(r result) float64 { return r.RSSMiB })
		m.ConnInPerMsg = med(func(r result) float64 { return r.ConnInPerMsg })
		m.ConnOutPerMsg = med(func(r result) float64 { return r.ConnOutPerMsg })
		m.ContestantCores = med(func(r result) float64 { return r.ContestantCores })
		m.ServerCores = med(func(r result) float64 { return r.ServerCores })
		m.HostBusyCores = med(func(r result) float64 { return r.HostBusyCores })
		m.HostStealCores = med(func(r result) float64 { return r.HostStealCores })
		m.SyscallsPerMsg = med(func(r result) float64 { return r.SyscallsPerMsg })
		m.SrvSyscallsPerMsg = med(func(r result) float64 { return r.SrvSyscallsPerMsg })
		m.MeanAckPending = med(func(r result) float64 { return r.MeanAckPending })
		m.MeanWaiting = med(func(r result) float64 { return r.MeanWaiting })
		out = append(out, m)
	}
	return out
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

type server struct {
	cmd      *exec.Cmd
	dir      string
	url      string
	monitor  string // http://127.0.0.1:port
	profPort int
}

func startServer(o options, dir string) (*server, error) {
	var ports [3]int
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	s := &server{dir: dir, url: fmt.Sprintf("nats://127.0.0.1:%d", ports[0]), monitor: fmt.Sprintf("http://127.0.0.1:%d", ports[1])}
	args := []string{"-a", "127.0.0.1", "-p", strconv.Itoa(ports[0]), "-m", strconv.Itoa(ports[1]), "-js", "-sd", filepath.Join(dir, "store")}
	if o.profileDir != "" {
		s.profPort = ports[2]
		args = append(args, "--profile", strconv.Itoa(ports[2]))
	}
	log, err := os.Create(filepath.Join(dir, "nats-server.log"))
	if err != nil {
		return nil, err
	}
	s.cmd = exec.Command(o.natsServer, args...)
	s.cmd.Stdout, s.cmd.Stderr = log, log
	s.cmd.SysProcAttr = dieWithParent()
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(s.monitor + "/healthz?js-enabled-only=true")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.stop()
	return nil, fmt.Errorf("nats-server did not start (log in %s)", log.Name())
}

func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
}

// drain is one contestant's run on a fresh server.
func drain(o options, c contestant, round int) (res result, err error) {
	res = result{Round: round, Contestant: c.Name}
	dir, err := os.MkdirTemp("", "imbi-bench-peers-")
	if err != nil {
		return res, err
	}
	keep := false
	defer func() {
		if !keep {
			os.RemoveAll(dir)
		}
	}()
	srv, err := startServer(o, dir)
	if err != nil {
		return res, err
	}
	defer srv.stop()
	pubArgs := []string{"-url", srv.url, "-n", strconv.Itoa(o.n)}
	if c.Handler != "" {
		pubArgs = append(pubArgs, "-handler", c.Handler)
	}
	pub := exec.Command(o.prepublish, pubArgs...)
	pub.SysProcAttr = dieWithParent()
	if out, err := pub.CombinedOutput(); err != nil {
		return res, fmt.Errorf("prepublish: %w: %s", err, out)
	}
	nc, err := nats.Connect(srv.url, nats.Name("bench-harness"), nats.CustomInboxPrefix(harnessInbox))
	if err != nil {
		return res, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return res, err
	}
	ctx := context.Background()
	cons, err := js.Consumer(ctx, "IMBI_ACTIONS", "imbi-worker")
	if err != nil {
		return res, err
	}
	var tap *tapper
	if o.tap {
		if tap, err = startTap(srv.url); err != nil {
			return res, err
		}
		defer tap.close()
	}

	var host *pluginHost
	if c.Host {
		if host, err = startPluginHost(o, nc, srv.url, dir); err != nil {
			keep = true
			return res, fmt.Errorf("%w (logs in %s)", err, dir)
		}
		defer host.stop()
	}

	subst := func(s string) string { return strings.ReplaceAll(s, "{{URL}}", srv.url) }
	args := make([]string, len(c.Args))
	for i, a := range c.Args {
		args[i] = subst(a)
	}
	if c.Bin == "imbi-worker-bench" && o.workerArgs != "" {
		args = append(args, strings.Fields(o.workerArgs)...)
	}
	cmd := exec.Command(filepath.Join(o.binDir, c.Bin), args...)
	cmd.Env = os.Environ()
	for _, e := range c.Env {
		cmd.Env = append(cmd.Env, subst(e))
	}
	var pprofPort int
	if o.profileDir != "" {
		if pprofPort, err = freePort(); err != nil {
			return res, err
		}
		cmd.Env = append(cmd.Env, fmt.Sprintf("BENCH_PPROF_ADDR=127.0.0.1:%d", pprofPort))
	}
	logf, err := os.Create(filepath.Join(dir, c.Name+".log"))
	if err != nil {
		return res, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = dieWithParent()
	if err := cmd.Start(); err != nil {
		return res, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(35 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	fail := func(err error) (result, error) {
		keep = true
		return res, fmt.Errorf("%w (logs in %s)", err, dir)
	}

	var (
		t0, t1       time.Time
		c0, s0, h0   time.Duration
		cs0, ss0     int64
		host0        hostTicks
		polls        int
		sumAckPend   float64
		sumWaiting   float64
		conn0, conn1 connCounts
		profWG       sync.WaitGroup
		profErr      error
	)
	deadline := time.Now().Add(o.timeout)
	for {
		select {
		case err := <-exited:
			exited <- err
			return fail(fmt.Errorf("contestant exited: %v", err))
		default:
		}
		if host != nil && host.exitedEarly() {
			return fail(errors.New("plugin host exited"))
		}
		if time.Now().After(deadline) {
			return fail(errors.New("drain timed out"))
		}
		ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
		info, err := cons.Info(ictx)
		cancel()
		now := time.Now()
		cc, sc := procCPU(cmd.Process.Pid), procCPU(srv.cmd.Process.Pid)
		var hc time.Duration
		if host != nil {
			hc = procCPU(host.cmd.Process.Pid)
		}
		if err != nil {
			return fail(err)
		}
		if t0.IsZero() && info.Delivered.Stream > 0 {
			t0, c0, s0, h0 = now, cc, sc, hc
			cs0, ss0 = procSyscalls(cmd.Process.Pid), procSyscalls(srv.cmd.Process.Pid)
			host0 = readHostTicks()
			conn0, _ = contestantConn(srv.monitor)
			if o.profileDir != "" {
				base := filepath.Join(o.profileDir, fmt.Sprintf("%s-r%d", c.Name, round))
				profWG.Add(2)
				go func() {
					defer profWG.Done()
					if err := fetchProfile(fmt.Sprintf("http://127.0.0.1:%d", pprofPort), o.profileSeconds, base+".contestant.prof"); err != nil {
						profErr = err
					}
				}()
				go func() {
					defer profWG.Done()
					if err := fetchProfile(fmt.Sprintf("http://127.0.0.1:%d", srv.profPort), o.profileSeconds, base+".server.prof"); err != nil {
						profErr = err
					}
				}()
			}
		}
		if !t0.IsZero() && info.AckFloor.Stream < uint64(o.n) {
			polls++
			sumAckPend += float64(info.NumAckPending)
			sumWaiting += float64(info.NumWaiting)
		}
		if !t0.IsZero() && info.AckFloor.Stream >= uint64(o.n) {
			t1 = now
			res.CPUUsPerMsg = float64((cc - c0).Microseconds()) / float64(o.n)
			res.SrvUsPerMsg = float64((sc - s0).Microseconds()) / float64(o.n)
			res.Seconds = t1.Sub(t0).Seconds()
			res.MsgsPerSec = float64(o.n) / res.Seconds
			res.ContestantCores = (cc - c0).Seconds() / res.Seconds
			res.ServerCores = (sc - s0).Seconds() / res.Seconds
			host1 := readHostTicks()
			res.HostBusyCores = (host1.busy - host0.busy).Seconds() / res.Seconds
			res.HostStealCores = (host1.steal - host0.steal).Seconds() / res.Seconds
			if host != nil {
				res.HostUsPerMsg = float64((hc - h0).Microseconds()) / float64(o.n)
				res.HostCores = (hc - h0).Seconds() / res.Seconds
			}
			res.Redelivered = max(0, int(info.Delivered.Consumer)-int(info.Delivered.Stream))
			res.SyscallsPerMsg = float64(procSyscalls(cmd.Process.Pid)-cs0) / float64(o.n)
			res.SrvSyscallsPerMsg = float64(procSyscalls(srv.cmd.Process.Pid)-ss0) / float64(o.n)
			conn1, _ = contestantConn(srv.monitor)
			break
		}
		time.Sleep(o.poll)
	}
	res.RSSMiB = vmHWM(cmd.Process.Pid)
	if polls > 0 {
		res.MeanAckPending, res.MeanWaiting = sumAckPend/float64(polls), sumWaiting/float64(polls)
	}
	if conn0.found && conn1.found {
		res.ConnInPerMsg = float64(conn1.in-conn0.in) / float64(o.n)
		res.ConnOutPerMsg = float64(conn1.out-conn0.out) / float64(o.n)
	}
	if tap != nil {
		res.Tap = tap.counts()
	}
	profWG.Wait()
	if profErr != nil {
		return fail(fmt.Errorf("profile: %w", profErr))
	}
	// Every message ran: none was dead-lettered, and a plugin host ran
	// each remote action without an error.
	if err := checkNoDeadLetters(ctx, js); err != nil {
		return fail(err)
	}
	if host != nil {
		st, err := hostRunStats(nc)
		if err != nil {
			return fail(err)
		}
		res.HostRequests = st.Requests
		if st.Requests < o.n || st.Errors != 0 {
			return fail(fmt.Errorf("plugin host served %d run requests with %d errors (last %q), want at least %d without an error", st.Requests, st.Errors, st.LastError, o.n))
		}
	}
	return res, nil
}

func fetchProfile(base string, seconds int, path string) error {
	client := http.Client{Timeout: time.Duration(seconds+30) * time.Second}
	resp, err := client.Get(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, seconds))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s: %s: %s", base, resp.Status, b)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}

type connCounts struct {
	in, out int64
	found   bool
}

// contestantConn sums the in/out message counts of every client
// connection that is not the harness's or the prepublisher's (the
// contestant's; the worker has one).
func contestantConn(monitor string) (connCounts, error) {
	var cc connCounts
	resp, err := http.Get(monitor + "/connz?limit=1024")
	if err != nil {
		return cc, err
	}
	defer resp.Body.Close()
	var z struct {
		Connections []struct {
			Name    string `json:"name"`
			InMsgs  int64  `json:"in_msgs"`
			OutMsgs int64  `json:"out_msgs"`
		} `json:"connections"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&z); err != nil {
		return cc, err
	}
	for _, c := range z.Connections {
		if strings.HasPrefix(c.Name, "bench-harness") || c.Name == "bench-tap" || c.Name == "bench-prepublish" || c.Name == "imbi-plugin-host" {
			continue
		}
		cc.in += c.InMsgs
		cc.out += c.OutMsgs
		cc.found = true
	}
	return cc, nil
}

// procCPU is utime+stime of a process (all its threads).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	// Fields after the command (which may contain spaces) in parentheses.
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / clockTicks
}

// hostTicks is the host's CPU time since boot (/proc/stat's cpu line).
type hostTicks struct{ busy, steal time.Duration }

// readHostTicks reads the aggregate cpu line: busy is user + nice +
// system + irq + softirq, steal the hypervisor's. Zero when unreadable.
func readHostTicks() hostTicks {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return hostTicks{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return hostTicks{}
	}
	var v [8]int64
	for i := range v {
		v[i], _ = strconv.ParseInt(f[i+1], 10, 64)
	}
	ticks := func(n int64) time.Duration { return time.Duration(n) * time.Second / clockTicks }
	return hostTicks{busy: ticks(v[0] + v[1] + v[2] + v[5] + v[6]), steal: ticks(v[7])}
}

// dieWithParent: a child (server, prepublisher, contestant) gets SIGTERM
// when the harness dies, so an interrupted run leaves no process behind.
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}

// procSyscalls is the process's read- and write-family system calls so
// far (/proc/<pid>/io syscr + syscw, all threads).
func procSyscalls(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0
	}
	var n int64
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, _ := strings.Cut(line, ": ")
		if k == "syscr" || k == "syscw" {
			x, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			n += x
		}
	}
	return n
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

func vmHWM(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return -1
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}
