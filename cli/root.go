// Package cli is the imbi-worker command line. The shipped binary
// (cmd/worker) is a two-line main that calls Main; a custom binary with
// extra plugins does the same after importing its plugin packages, the way
// Caddy builds are assembled:
//
//	import (
//		"github.com/aweber-imbi/imbi-worker/cli"
//		_ "example.com/my/plugin"
//	)
//
//	func main() { cli.Main() }
package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Version is set at build time:
// -ldflags "-X github.com/aweber-imbi/imbi-worker/cli.Version=..."
var Version = "dev"

// envPrefix: every flag --some-flag can also be set as IMBI_SOME_FLAG; an
// explicit flag wins over the environment.
const envPrefix = "IMBI_"

// EnvName is the environment variable that sets the flag named name.
func EnvName(name string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Main runs the command line and exits the process with its status.
func Main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := NewRootCmd().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "imbi-worker:", err)
		os.Exit(1)
	}
}

// NewRootCmd builds the command tree (tests run it in process).
func NewRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "imbi-worker",
		Short:         "Run Imbi webhook actions from NATS JetStream",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return applyEnv(cmd)
		},
	}
	// One line per command family; each lives in its own cmd_*.go file.
	root.AddCommand(
		newVersionCmd(),
		newActionsCmd(),
		newRunCmd(),
		newStreamsCmd(),
		newPublishCmd(),
		newDLQCmd(),
		newCredsCmd(),
		newDocsCmd(),
	)
	return root
}

// applyEnv fills every flag the user did not set from IMBI_<FLAG_NAME>.
func applyEnv(cmd *cobra.Command) error {
	var firstErr error
	visit := func(f *pflag.Flag) {
		if f.Changed || firstErr != nil {
			return
		}
		if v, ok := os.LookupEnv(EnvName(f.Name)); ok {
			if err := f.Value.Set(v); err != nil {
				firstErr = fmt.Errorf("%s: %w", EnvName(f.Name), err)
			}
		}
	}
	cmd.Flags().VisitAll(visit)
	cmd.InheritedFlags().VisitAll(visit)
	return firstErr
}
