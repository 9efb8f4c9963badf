package main

import (
	"math"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestDeriveSplitsArgsAndEnv(t *testing.T) {
	c, err := derive("off-p256=worker-off --prefetch 256 IMBI_X=1")
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "off-p256" || c.Bin != "imbi-worker-bench" {
		t.Fatalf("got %+v", c)
	}
	if !slices.Equal(c.Args[len(c.Args)-3:], []string{"--no-idempotency", "--prefetch", "256"}) {
		t.Fatalf("args %v", c.Args)
	}
	if !slices.Equal(c.Env, []string{"IMBI_X=1"}) {
		t.Fatalf("env %v", c.Env)
	}
	// The base entry is not changed.
	if i := slices.IndexFunc(contestants, func(c contestant) bool { return c.Name == "worker-off" }); slices.Contains(contestants[i].Args, "256") {
		t.Fatal("base contestant modified")
	}
	c, err = derive("base=worker bin=imbi-worker-bench-base vs=base-off")
	if err != nil {
		t.Fatal(err)
	}
	if c.Bin != "imbi-worker-bench-base" || c.Baseline != "base-off" || slices.ContainsFunc(c.Args, func(a string) bool { return strings.Contains(a, "=") }) || len(c.Env) != 0 {
		t.Fatalf("bin/vs tokens: %+v", c)
	}
	for _, bad := range []string{"nobase", "x=", "x=unknown"} {
		if _, err := derive(bad); err == nil {
			t.Fatalf("derive(%q) accepted", bad)
		}
	}
}

func TestMediansAndProc(t *testing.T) {
	rs := []result{{Contestant: "raw", MsgsPerSec: 3}, {Contestant: "raw", MsgsPerSec: 1}, {Contestant: "raw", MsgsPerSec: 2}}
	m := medians([]contestant{{Name: "raw"}}, rs)
	if len(m) != 1 || m[0].MsgsPerSec != 2 {
		t.Fatalf("medians %+v", m)
	}
	pid := os.Getpid()
	if procSyscalls(pid) <= 0 || vmHWM(pid) <= 0 {
		t.Fatalf("proc: syscalls %d, rss %f", procSyscalls(pid), vmHWM(pid))
	}
	for i := 0; procCPU(pid) == 0 && i < 1e9; i++ { // burn until a tick is counted
	}
	if procCPU(pid) <= 0 {
		t.Fatal("no CPU time read")
	}
}

// A remote row differs from its baseline only by the remote action: the
// same binary and flags plus --remote-plugins on. The worker row differs
// from its baseline only by the outcome events: --no-outcomes.
func TestRowsMatchTheirBaseline(t *testing.T) {
	n := 0
	for _, c := range contestants {
		if c.Baseline == "" {
			continue
		}
		i := slices.IndexFunc(contestants, func(b contestant) bool { return b.Name == c.Baseline })
		if i < 0 {
			t.Fatalf("%s: baseline %q is not a contestant", c.Name, c.Baseline)
		}
		b := contestants[i]
		if !c.Host {
			if c.Name != "worker" || b.Name != "worker-outcomes-off" || c.Bin != b.Bin || b.Host ||
				!slices.Equal(append(slices.Clone(c.Args), "--no-outcomes"), b.Args) {
				t.Fatalf("%s against %s: %+v / %+v", c.Name, b.Name, c, b)
			}
			continue
		}
		n++
		if !c.Host || c.Handler != remoteHandler || b.Host || b.Handler != "" || c.Bin != b.Bin {
			t.Fatalf("%s against %s: %+v / %+v", c.Name, b.Name, c, b)
		}
		if want := append(slices.Clone(b.Args), "--remote-plugins", "on"); !slices.Equal(c.Args, want) {
			t.Fatalf("%s args %v, want %v", c.Name, c.Args, want)
		}
	}
	if n != 2 {
		t.Fatalf("%d remote rows, want worker-remote and worker-remote-off", n)
	}
}

func TestOverhead(t *testing.T) {
	tests := []struct {
		name    string
		r, base result
		want    overhead
	}{
		{"slower and dearer",
			result{MsgsPerSec: 1000, CPUUsPerMsg: 300, HostUsPerMsg: 500, SrvUsPerMsg: 250},
			result{MsgsPerSec: 5000, CPUUsPerMsg: 100, SrvUsPerMsg: 100},
			overhead{RateRatio: 0.2, WallUs: 800, CPUUs: 850, WorkerUs: 200, HostUs: 500, ServerUs: 150}},
		{"same", result{MsgsPerSec: 2000, CPUUsPerMsg: 10}, result{MsgsPerSec: 2000, CPUUsPerMsg: 10}, overhead{RateRatio: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := overheadOf(tt.r, tt.base); got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// The paired figures are per round (a row against its baseline of the
// same round) and their medians, not ratios of the rows' medians.
func TestPairedRatios(t *testing.T) {
	list := []contestant{{Name: "a", Baseline: "b"}, {Name: "b"}, {Name: "c", Baseline: "missing"}}
	all := []result{
		{Round: 1, Contestant: "a", MsgsPerSec: 900, CPUUsPerMsg: 110, SrvUsPerMsg: 80},
		{Round: 1, Contestant: "b", MsgsPerSec: 1000, CPUUsPerMsg: 100, SrvUsPerMsg: 70},
		{Round: 2, Contestant: "b", MsgsPerSec: 500, CPUUsPerMsg: 100, SrvUsPerMsg: 70},
		{Round: 2, Contestant: "a", MsgsPerSec: 400, CPUUsPerMsg: 130, SrvUsPerMsg: 90},
		{Round: 3, Contestant: "a", MsgsPerSec: 700, CPUUsPerMsg: 105, SrvUsPerMsg: 75},
		{Round: 3, Contestant: "b", MsgsPerSec: 1000, CPUUsPerMsg: 100, SrvUsPerMsg: 70},
		{Round: 1, Contestant: "c", MsgsPerSec: 1},
	}
	ps := pairedRatios(list, all)
	if len(ps) != 1 || ps[0].Contestant != "a" || ps[0].Baseline != "b" || len(ps[0].Rounds) != 3 {
		t.Fatalf("paired %+v", ps)
	}
	var got []float64
	for _, o := range ps[0].Rounds {
		got = append(got, o.RateRatio)
	}
	if !slices.Equal(got, []float64{0.9, 0.8, 0.7}) {
		t.Fatalf("round ratios %v", got)
	}
	// Ratio of the medians would be 700/1000 = 0.7; the median of the
	// paired ratios is 0.8.
	if m := ps[0].Median; m.RateRatio != 0.8 || m.WorkerUs != 10 || m.ServerUs != 10 || m.CPUUs != 20 {
		t.Fatalf("median %+v", m)
	}
}

func TestMedianCI(t *testing.T) {
	seq := func(n int) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[n-1-i] = float64(i + 1) // unsorted on purpose
		}
		return v
	}
	for _, c := range []struct {
		n      int
		lo, hi float64
		cov    float64 // rounded to 4 places
	}{
		{n: 5},                              // 1 − 2/32 = 93.75 %: none
		{n: 6, lo: 1, hi: 6, cov: 0.9688},   // 1 − 2/64
		{n: 12, lo: 3, hi: 10, cov: 0.9614}, // 1 − 2·79/4096
		{n: 20, lo: 6, hi: 15, cov: 0.9586}, // 1 − 2·P(X ≤ 5)
		{n: 1},
		{n: 0},
	} {
		got := medianCI(seq(c.n), 0.95)
		if got.Lo != c.lo || got.Hi != c.hi || math.Round(got.Coverage*1e4)/1e4 != c.cov {
			t.Errorf("n=%d: %+v, want [%v, %v] at %v", c.n, got, c.lo, c.hi, c.cov)
		}
	}
}
