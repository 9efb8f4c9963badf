package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// STUB: replaced by the issue that owns this command.
func newPublishCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "publish",
		Short: "(not built yet)",
		RunE:  func(*cobra.Command, []string) error { return errors.New("publish: not built yet") },
	}
}
