// Command imbi-worker runs Imbi webhook actions from NATS JetStream.
package main

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

// version is set at build time: -ldflags "-X main.version=..."
var version = "dev"

// envPrefix: every flag --some-flag can also be set as IMBI_SOME_FLAG; an
// explicit flag wins over the environment.
const envPrefix = "IMBI_"

// EnvName is the environment variable that sets the flag named name.
func EnvName(name string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "imbi-worker:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
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
