package main

import (
	"os"
	"slices"
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
// same binary and flags plus --remote-plugins on.
func TestRemoteRowsMatchTheirBaseline(t *testing.T) {
	n := 0
	for _, c := range contestants {
		if c.Baseline == "" {
			continue
		}
		n++
		i := slices.IndexFunc(contestants, func(b contestant) bool { return b.Name == c.Baseline })
		if i < 0 {
			t.Fatalf("%s: baseline %q is not a contestant", c.Name, c.Baseline)
		}
		b := contestants[i]
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
