// Command imbi-worker-bench is the shipped worker (cli.Main, the built-in
// plugins) with the benchmark's no-op plugin compiled in through the
// public SDK, exactly as a custom worker binary is built
// (examples/plugins/hello). BENCH_PPROF_ADDR adds a pprof server.
package main

import (
	"github.com/aweber-imbi/imbi-worker/cli"

	_ "github.com/aweber-imbi/imbi-worker/builtin"

	"github.com/aweber-imbi/imbi-worker/bench/internal/pprofenv"
	_ "github.com/aweber-imbi/imbi-worker/bench/noop"
)

func main() {
	pprofenv.Start()
	cli.Main()
}
