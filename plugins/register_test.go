package plugins_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/pluginreg"
	"github.com/aweber-imbi/imbi-worker/plugins"
)

// Register's rules (decision 0001, Caddy's RegisterModule): an empty or
// reused name panics at init; the plugin value itself is checked at load.
func TestRegister(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name      string
		register  func()
		wantPanic string
		wantNames []string
		wantLoad  any   // what the single new registration's Load returns
		wantErr   error // and its error
	}{
		{"value", func() { plugins.Register("a", sampleWebhook{}) }, "", []string{"a"}, sampleWebhook{}, nil},
		{"loader", func() {
			plugins.RegisterLoader("a", func() (plugins.Plugin, error) { return sampleWebhook{}, nil })
		}, "", []string{"a"}, sampleWebhook{}, nil},
		{"loader_error_is_kept", func() {
			plugins.RegisterLoader("a", func() (plugins.Plugin, error) { return nil, boom })
		}, "", []string{"a"}, nil, boom},
		{"nil_plugin_is_a_load_problem_not_a_panic", func() { plugins.Register("a", nil) }, "", []string{"a"}, nil, nil},
		{"empty_name_panics", func() { plugins.Register("", sampleWebhook{}) }, "plugins: Register with empty name", nil, nil, nil},
		{"duplicate_name_panics", func() {
			plugins.Register("a", sampleWebhook{})
			plugins.Register("a", stubLogs{})
		}, `plugins: "a" registered twice`, []string{"a"}, sampleWebhook{}, nil},
		{"nil_loader_panics", func() { plugins.RegisterLoader("a", nil) }, `plugins: Register "a" with nil loader`, nil, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Cleanup(pluginreg.Reset())
			if tc.wantPanic != "" {
				require.PanicsWithError(t, tc.wantPanic, tc.register)
			} else {
				require.NotPanics(t, tc.register)
			}
			regs := pluginreg.All()
			var names []string
			for _, r := range regs {
				names = append(names, r.Name)
			}
			require.Equal(t, tc.wantNames, names)
			if len(regs) == 0 {
				return
			}
			v, err := regs[0].Load()
			require.ErrorIs(t, err, tc.wantErr)
			if tc.wantErr == nil {
				require.NoError(t, err)
			}
			require.Equal(t, tc.wantLoad, v)
		})
	}
}
