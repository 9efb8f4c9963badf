// Command imbi-worker-hello is imbi-worker with the hello plugin compiled
// in: the whole recipe for a custom worker binary is cli.Main plus a
// blank import per plugin module.
package main

import (
	"github.com/aweber-imbi/imbi-worker/cli"

	// The hello plugin registers itself from init.
	_ "example.com/imbi-hello"
)

func main() { cli.Main() }
