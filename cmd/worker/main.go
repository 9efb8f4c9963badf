// Command imbi-worker runs Imbi webhook actions from NATS JetStream.
package main

import (
	"github.com/aweber-imbi/imbi-worker/cli"
	// Built-in plugins register themselves from init.
	_ "github.com/aweber-imbi/imbi-worker/builtin"
)

func main() { cli.Main() }
