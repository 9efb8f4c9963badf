package worker

import (
	"fmt"
	"runtime/debug"
)

// DefaultGCPercent is the GC target `imbi-worker run` uses unless GOGC is
// set. The worker's live heap is small (≈ 23 MiB peak RSS under the
// benchmark's full load against a 100 MiB budget) while it allocates a few
// KiB per message, so at Go's default of 100 the collector ran every few
// MiB and cost ≈ 8 µs of CPU per message (docs/performance.md). 400 lets
// the heap grow to 5× the live data between cycles.
const DefaultGCPercent = 400

// TuneGC sets the collector for a worker process: percent (GOGC) unless
// the GOGC environment variable is set — an operator's explicit choice
// wins — and a soft memory limit of limitBytes (> 0) unless GOMEMLIMIT
// is set, so a raised GOGC cannot push the heap past the container's
// budget. getenv is os.Getenv (injected for tests). It returns what it
// did, for the start-up log line.
//
// It changes process-wide runtime settings: call it once, from main.
func TuneGC(percent int, limitBytes int64, getenv func(string) string) string {
	var out string
	if getenv("GOGC") != "" {
		out = "GOGC=" + getenv("GOGC") + " (environment)"
	} else if percent != 0 {
		debug.SetGCPercent(percent)
		out = fmt.Sprintf("GOGC=%d", percent)
	} else {
		out = "GOGC=100 (Go default)"
	}
	if getenv("GOMEMLIMIT") != "" {
		out += ", GOMEMLIMIT=" + getenv("GOMEMLIMIT") + " (environment)"
	} else if limitBytes > 0 {
		debug.SetMemoryLimit(limitBytes)
		out += fmt.Sprintf(", memory limit %d MiB", limitBytes>>20)
	}
	return out
}
