package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// STUB: replaced by the issue that owns this command.
func newActionsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "actions",
		Short: "(not built yet)",
		RunE:  func(*cobra.Command, []string) error { return errors.New("actions: not built yet") },
	}
}
