package imbiworker

import (
	"go/build"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Package boundaries (structure issue 13 §5): wire is a leaf that imports
// nothing from this module, and the credential store does not import the
// dispatcher whose interface it implements.
func TestPackageImports(t *testing.T) {
	const module = "github.com/aweber-imbi/imbi-worker"
	tests := []struct {
		dir       string
		forbidden func(path string) bool
	}{
		{"wire", func(p string) bool { return p == module || strings.HasPrefix(p, module+"/") }},
		{"internal/creds", func(p string) bool { return p == module+"/internal/dispatch" }},
		{"plugins", func(p string) bool { return p == module+"/internal/registry" || p == module+"/wire" }},
	}
	for _, tc := range tests {
		t.Run(tc.dir, func(t *testing.T) {
			pkg, err := build.ImportDir(tc.dir, 0)
			require.NoError(t, err)
			require.NotEmpty(t, pkg.Imports)
			bad := slices.DeleteFunc(slices.Clone(pkg.Imports), func(p string) bool { return !tc.forbidden(p) })
			require.Empty(t, bad, "%s imports %v", tc.dir, bad)
		})
	}
}
