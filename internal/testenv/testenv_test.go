package testenv_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/testenv"
)

// recorder is a testing.TB that records a skip instead of stopping.
type recorder struct {
	testing.TB
	skipped string
}

func (r *recorder) Helper() {}
func (r *recorder) Skip(args ...any) {
	r.skipped = strings.TrimSpace(strings.Join(strings.Fields(strings.TrimSpace(sprint(args...))), " "))
}

func sprint(args ...any) string {
	var b strings.Builder
	for _, a := range args {
		b.WriteString(a.(string))
	}
	return b.String()
}

func TestSkipMessages(t *testing.T) {
	tests := []struct {
		name       string
		env        map[string]string
		call       func(tb testing.TB) string
		wantPrefix string // "" = no skip
		wantValue  string
	}{
		{"python_unset", map[string]string{testenv.EnvPython: ""}, testenv.PythonPath, "needs python: IMBI_TEST_PYTHON is not set", ""},
		{"python_set", map[string]string{testenv.EnvPython: "/venv/bin/python"}, testenv.PythonPath, "", "/venv/bin/python"},
		{"neo4j_unset", map[string]string{testenv.EnvNeo4jURL: ""}, testenv.Neo4jURL, "needs neo4j: IMBI_NEO4J_URL is not set", ""},
		{"neo4j_set", map[string]string{testenv.EnvNeo4jURL: "bolt://x:7687"}, testenv.Neo4jURL, "", "bolt://x:7687"},
		{"nats", nil, func(tb testing.TB) string { testenv.Skip(tb, testenv.NATS, "no server"); return "" }, "needs nats: no server", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			r := &recorder{TB: t}
			got := tc.call(r)
			if tc.wantPrefix == "" {
				require.Empty(t, r.skipped)
				require.Equal(t, tc.wantValue, got)
				return
			}
			require.True(t, strings.HasPrefix(r.skipped, tc.wantPrefix), r.skipped)
		})
	}
}

func TestPrefixes(t *testing.T) {
	var got []string
	for _, s := range testenv.Services() {
		got = append(got, s.Prefix())
	}
	require.Equal(t, []string{"needs neo4j: ", "needs python: ", "needs nats: "}, got)
}
