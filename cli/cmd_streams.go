package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// STUB: replaced by the issue that owns this command.
func newStreamsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "streams",
		Short: "(not built yet)",
		RunE:  func(*cobra.Command, []string) error { return errors.New("streams: not built yet") },
	}
}
