package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// STUB: replaced by the issue that owns this command.
func newCredsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "creds",
		Short: "(not built yet)",
		RunE:  func(*cobra.Command, []string) error { return errors.New("creds: not built yet") },
	}
}
