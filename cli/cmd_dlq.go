package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// STUB: replaced by the issue that owns this command.
func newDLQCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "dlq",
		Short: "(not built yet)",
		RunE:  func(*cobra.Command, []string) error { return errors.New("dlq: not built yet") },
	}
}
