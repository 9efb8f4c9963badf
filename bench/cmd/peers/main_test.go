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
