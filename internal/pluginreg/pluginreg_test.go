package pluginreg_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/pluginreg"
)

func TestAdd(t *testing.T) {
	load := func() (any, error) { return 1, nil }
	tests := []struct {
		name    string
		adds    []string
		nilLoad bool
		wantErr error
		want    []string
	}{
		{"in_order", []string{"b", "a"}, false, nil, []string{"b", "a"}},
		{"empty_name", []string{""}, false, pluginreg.ErrEmptyName, nil},
		{"duplicate", []string{"a", "b", "a"}, false, &pluginreg.DuplicateNameError{Name: "a"}, []string{"a", "b"}},
		{"nil_loader", []string{"a"}, true, &pluginreg.NilLoaderError{Name: "a"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Cleanup(pluginreg.Reset())
			var err error
			for _, n := range tc.adds {
				l := load
				if tc.nilLoad {
					l = nil
				}
				if e := pluginreg.Add(n, l); e != nil {
					err = e
				}
			}
			if tc.wantErr == nil {
				require.NoError(t, err)
			} else {
				require.Equal(t, tc.wantErr, err)
			}
			var got []string
			for _, r := range pluginreg.All() {
				got = append(got, r.Name)
			}
			require.Equal(t, tc.want, got)
		})
	}
}

// Reset empties the set and its restore function brings it back.
func TestResetRestores(t *testing.T) {
	t.Cleanup(pluginreg.Reset())
	require.NoError(t, pluginreg.Add("kept", func() (any, error) { return nil, nil }))
	restore := pluginreg.Reset()
	require.Empty(t, pluginreg.All())
	restore()
	require.Len(t, pluginreg.All(), 1)
	require.Equal(t, "kept", pluginreg.All()[0].Name)
}
