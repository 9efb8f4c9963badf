package cli

import (
	"os"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/actions/httprequest"
	"github.com/aweber-imbi/imbi-worker/internal/pluginreg"
	"github.com/aweber-imbi/imbi-worker/internal/registry"
)

// --http-allow-private / IMBI_HTTP_ALLOW_PRIVATE reach the http plugin the
// registry loads, and only plugins that honour the allowance change.
func TestHTTPAllowPrivateReachesThePlugin(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  string // "": unset
		want bool
	}{
		{name: "default refuses", want: false},
		{name: "flag", args: []string{"--http-allow-private"}, want: true},
		{name: "environment", env: "true", want: true},
		{name: "flag wins over environment", args: []string{"--http-allow-private=false"}, env: "true", want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvName("http-allow-private"), tc.env)
			if tc.env == "" {
				require.NoError(t, os.Unsetenv(EnvName("http-allow-private")))
			}
			var f httpFlags
			cmd := &cobra.Command{Use: "run", Args: cobra.NoArgs, RunE: func(*cobra.Command, []string) error { return nil },
				PersistentPreRunE: func(cmd *cobra.Command, _ []string) error { return applyEnv(cmd) }}
			f.addFlags(cmd.Flags())
			cmd.SetArgs(tc.args)
			require.NoError(t, cmd.Execute())

			reg := registry.New(f.registrations(func() []pluginreg.Registration {
				return []pluginreg.Registration{
					{Name: httprequest.Slug, Load: func() (any, error) { return httprequest.New(), nil }},
				}
			}))
			res, err := reg.Load()
			require.NoError(t, err)
			require.Empty(t, res.Errors)
			entry, err := reg.Get(httprequest.Slug)
			require.NoError(t, err)
			p, ok := entry.Plugin.(httprequest.Plugin)
			require.True(t, ok, "%T", entry.Plugin)
			require.Equal(t, tc.want, p.AllowPrivate)
		})
	}
	require.NotNil(t, newRunCmd().Flags().Lookup("http-allow-private"), "run has the flag")
}
