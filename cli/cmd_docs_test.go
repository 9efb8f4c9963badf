package cli

import (
	"bytes"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite the generated section of docs/operations.md")

const (
	operationsDoc  = "../docs/operations.md"
	generatedBegin = "<!-- BEGIN GENERATED: imbi-worker docs flags -->\n"
	generatedEnd   = "<!-- END GENERATED -->"
)

// docs/operations.md embeds the output of `imbi-worker docs flags`; a flag
// added, renamed or re-described without regenerating fails here.
// Regenerate: go test ./cli -run TestOperationsDocFlagReference -update-docs
func TestOperationsDocFlagReference(t *testing.T) {
	var gen bytes.Buffer
	require.NoError(t, WriteFlagReference(&gen, NewRootCmd()))

	raw, err := os.ReadFile(operationsDoc)
	require.NoError(t, err)
	doc := string(raw)
	start := strings.Index(doc, generatedBegin)
	end := strings.Index(doc, generatedEnd)
	require.True(t, start >= 0 && end > start, "docs/operations.md must hold the generated markers")
	start += len(generatedBegin)

	if *updateDocs {
		doc = doc[:start] + gen.String() + doc[end:]
		require.NoError(t, os.WriteFile(operationsDoc, []byte(doc), 0o644))
		return
	}
	require.Equal(t, gen.String(), doc[start:end],
		"docs/operations.md is stale: go test ./cli -run TestOperationsDocFlagReference -update-docs")
}

// The hidden command prints the same text the docs embed.
func TestDocsFlagsCommand(t *testing.T) {
	var want, got bytes.Buffer
	require.NoError(t, WriteFlagReference(&want, NewRootCmd()))
	root := NewRootCmd()
	root.SetOut(&got)
	root.SetArgs([]string{"docs", "flags"})
	require.NoError(t, root.Execute())
	require.Equal(t, want.String(), got.String())
	require.Contains(t, got.String(), "### Other environment variables")
}

// Every extra variable is still read somewhere in the code (its name as a
// string literal in a non-test file), and none duplicates a flag's twin.
func TestExtraEnvironmentIsReal(t *testing.T) {
	flagEnv := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		visit := func(f *pflag.Flag) { flagEnv[EnvName(f.Name)] = true }
		c.Flags().VisitAll(visit)
		c.PersistentFlags().VisitAll(visit) // not merged into Flags() before Execute
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(NewRootCmd())

	var sources strings.Builder
	require.NoError(t, filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != ".." || d.Name() == "testdata" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") ||
			filepath.Base(path) == "cmd_docs.go" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		sources.Write(b)
		return nil
	}))
	code := sources.String()
	for _, e := range ExtraEnvironment {
		require.False(t, flagEnv[e.Name], "%s is already a flag's variable; drop it from ExtraEnvironment", e.Name)
		if strings.HasPrefix(e.Name, "OTEL_") {
			continue // read by the OpenTelemetry SDK itself
		}
		require.True(t, strings.Contains(code, `"`+e.Name+`"`), "%s is documented but no code reads it", e.Name)
	}
}
