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
// explicit flag wins over the environment. Flags marked command-line-only
// (markCommandLineOnly) are the exception.
const envPrefix = "IMBI_"

// commandLineOnlyAnnotation marks a flag the environment never sets: the
// one-off arguments of an interactive command (filters, output format,
// confirmations). Environment variables configure a deployment; a stray
// IMBI_YES or IMBI_JSON in an operator's shell must not confirm a purge or
// change what a script parses.
const commandLineOnlyAnnotation = "imbi-worker/command-line-only"

// markCommandLineOnly marks the named flags of fs command-line-only. A name
// that is not a flag of fs is a programming error.
func markCommandLineOnly(fs *pflag.FlagSet, names ...string) {
	for _, n := range names {
		if err := fs.SetAnnotation(n, commandLineOnlyAnnotation, []string{"true"}); err != nil {
			panic(fmt.Sprintf("cli: %v", err))
		}
	}
}

// commandLineOnly reports whether the environment may not set f.
func commandLineOnly(f *pflag.Flag) bool {
	_, ok := f.Annotations[commandLineOnlyAnnotation]
	return ok
}

// EnvName is the environment variable that sets the flag named name.
func EnvName(name string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Main runs the command line and exits the process with its status.
func Main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := NewRootCmd().ExecuteContext(ctx); err != nil {
		// An error may quote message data (a dead letter's subject, an
		// event's id): escaped like every message-derived value in text.
		fmt.Fprintln(os.Stderr, "imbi-worker:", termSafe(err.Error()))
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
		newOutcomesCmd(),
		newLanesCmd(),
		newCredsCmd(),
		newDocsCmd(),
	)
	return root
}

// applyEnv fills every flag the user did not set from IMBI_<FLAG_NAME>,
// except command-line-only flags.
func applyEnv(cmd *cobra.Command) error {
	var firstErr error
	visit := func(f *pflag.Flag) {
		if f.Changed || firstErr != nil || commandLineOnly(f) {
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
