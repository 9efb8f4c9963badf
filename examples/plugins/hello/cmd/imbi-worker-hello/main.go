// Command imbi-worker-hello is imbi-worker with the hello plugin compiled
// in: the whole recipe for a custom worker binary is cli.Main plus a
// blank import per plugin module (and builtin for the shipped plugins).
package main

import (
	"github.com/aweber-imbi/imbi-worker/cli"

	// The built-in plugins (gateway-actions, http), as in the shipped binary.
	_ "github.com/aweber-imbi/imbi-worker/builtin"
	// The hello plugin registers itself from init.
	_ "example.com/imbi-hello"
)

func main() { cli.Main() }
