package cli

import (
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"
)

// TestApplyEnvSkipsCommandLineOnlyFlags: configuration flags take their
// IMBI_* variable, command-line-only ones never do, and a typed flag wins.
func TestApplyEnvSkipsCommandLineOnlyFlags(t *testing.T) {
	var setting, oneOff, typed string
	cmd := &cobra.Command{Use: "x"}
	cmd.Flags().StringVar(&setting, "some-setting", "default", "")
	cmd.Flags().StringVar(&oneOff, "one-off", "default", "")
	cmd.Flags().StringVar(&typed, "typed", "default", "")
	markCommandLineOnly(cmd.Flags(), "one-off")
	t.Setenv("IMBI_SOME_SETTING", "from-env")
	t.Setenv("IMBI_ONE_OFF", "from-env")
	t.Setenv("IMBI_TYPED", "from-env")
	require.NoError(t, cmd.Flags().Parse([]string{"--typed", "from-flag"}))

	require.NoError(t, applyEnv(cmd))
	require.Equal(t, "from-env", setting)
	require.Equal(t, "default", oneOff)
	require.Equal(t, "from-flag", typed)
}

func TestApplyEnvReportsBadValues(t *testing.T) {
	var n int
	cmd := &cobra.Command{Use: "x"}
	cmd.Flags().IntVar(&n, "count-of-things", 1, "")
	t.Setenv("IMBI_COUNT_OF_THINGS", "many")
	require.ErrorContains(t, applyEnv(cmd), "IMBI_COUNT_OF_THINGS")
}

func TestMarkCommandLineOnlyUnknownFlagPanics(t *testing.T) {
	cmd := &cobra.Command{Use: "x"}
	require.Panics(t, func() { markCommandLineOnly(cmd.Flags(), "nope") })
}
