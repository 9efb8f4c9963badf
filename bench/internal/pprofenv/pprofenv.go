// Package pprofenv serves net/http/pprof on BENCH_PPROF_ADDR when it is
// set, so the harness can profile a contestant during a drain. The
// shipped worker has no pprof endpoint (its admin server serves
// /healthz, /readyz and /metrics only); the benchmark's worker binary
// adds one here, outside the worker's code.
package pprofenv

import (
	"fmt"
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof/ on http.DefaultServeMux
	"os"
)

// Start serves pprof in the background when BENCH_PPROF_ADDR is set.
func Start() {
	addr := os.Getenv("BENCH_PPROF_ADDR")
	if addr == "" {
		return
	}
	go func() {
		if err := http.ListenAndServe(addr, nil); err != nil {
			fmt.Fprintln(os.Stderr, "pprof:", err)
		}
	}()
}
