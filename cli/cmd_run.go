package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// STUB: replaced by the issue that owns this command.
func newRunCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "run",
		Short: "(not built yet)",
		RunE:  func(*cobra.Command, []string) error { return errors.New("run: not built yet") },
	}
}
