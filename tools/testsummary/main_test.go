package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/testenv"
)

// The streams in testdata were recorded with `go test -json` (Go 1.27.3)
// from a scratch module: skips.jsonl (a pass, a "needs neo4j:" skip, a
// table with a pass, a plain skip and a "needs python:" skip),
// failures.jsonl (a failed test with a log line, a failed subtest),
// buildfail.jsonl (a test file that does not compile) and mixed.jsonl (all
// of them plus a package without tests, in one ./... run).
func TestRun(t *testing.T) {
	const pkg = "example.com/tsrec/"
	tests := []struct {
		file        string
		ci          bool
		want        Summary
		wantLines   []string // lines the output must contain, in this order
		absentLines []string
	}{
		{
			file: "skips.jsonl",
			want: Summary{Passed: 3, Skipped: 3, Skips: []Skip{
				{pkg + "a", "TestNeedsNeo4j", "needs neo4j: IMBI_NEO4J_URL is not set: run scripts/neo4j.sh start", true},
				{pkg + "a", "TestTable/short", "end to end, ~10 s", false},
				{pkg + "a", "TestTable/python", "needs python: IMBI_TEST_PYTHON is not set", true},
			}},
			wantLines: []string{
				"ok  \texample.com/tsrec/a\t0.041s",
				"SKIPPED TESTS (3):",
				"  example.com/tsrec/a TestNeedsNeo4j: needs neo4j: IMBI_NEO4J_URL is not set: run scripts/neo4j.sh start",
				"  example.com/tsrec/a TestTable/short: end to end, ~10 s",
				"  example.com/tsrec/a TestTable/python: needs python: IMBI_TEST_PYTHON is not set",
				"3 passed, 0 failed, 3 skipped",
			},
			absentLines: []string{"PASS", "=== RUN   TestPass"},
		},
		{
			file: "skips.jsonl", ci: true,
			want: Summary{Passed: 3, Failed: 2, Skipped: 1, Skips: []Skip{
				{pkg + "a", "TestNeedsNeo4j", "needs neo4j: IMBI_NEO4J_URL is not set: run scripts/neo4j.sh start", true},
				{pkg + "a", "TestTable/short", "end to end, ~10 s", false},
				{pkg + "a", "TestTable/python", "needs python: IMBI_TEST_PYTHON is not set", true},
			}},
			wantLines: []string{
				"  FAIL (CI provides this service) example.com/tsrec/a TestNeedsNeo4j: needs neo4j: IMBI_NEO4J_URL is not set: run scripts/neo4j.sh start",
				"  example.com/tsrec/a TestTable/short: end to end, ~10 s",
				"  FAIL (CI provides this service) example.com/tsrec/a TestTable/python: needs python: IMBI_TEST_PYTHON is not set",
				"3 passed, 2 failed, 1 skipped",
			},
		},
		{
			file: "failures.jsonl",
			want: Summary{Passed: 2, Failed: 3},
			wantLines: []string{
				"--- FAIL: TestBroken (0.00s)",
				"    b_test.go:8: some context",
				"    b_test.go:9: want 1, got 2",
				"--- FAIL: TestParent/fails (0.00s)",
				"    b_test.go:13: boom",
				"--- FAIL: TestParent (0.00s)",
				"FAIL\texample.com/tsrec/b\t0.005s",
				"2 passed, 3 failed, 0 skipped",
			},
			absentLines: []string{"SKIPPED TESTS (0):", "=== RUN   TestBroken", "--- PASS: TestOK (0.00s)"},
		},
		{
			file: "buildfail.jsonl",
			want: Summary{Failed: 1, FailedPackages: []string{pkg + "c"}},
			wantLines: []string{
				"# example.com/tsrec/c [example.com/tsrec/c.test]",
				"c/c_test.go:5:28: undefined: undefined",
				"FAIL\texample.com/tsrec/c [build failed]",
				"FAILED PACKAGE example.com/tsrec/c (build error, panic or timeout: see above)",
				"0 passed, 1 failed, 0 skipped",
			},
		},
		{
			file: "mixed.jsonl", ci: true,
			want: Summary{Passed: 5, Failed: 6, Skipped: 1, FailedPackages: []string{pkg + "c"}, Skips: []Skip{
				{pkg + "a", "TestNeedsNeo4j", "needs neo4j: IMBI_NEO4J_URL is not set: run scripts/neo4j.sh start", true},
				{pkg + "a", "TestTable/short", "end to end, ~10 s", false},
				{pkg + "a", "TestTable/python", "needs python: IMBI_TEST_PYTHON is not set", true},
			}},
			wantLines: []string{
				"ok  \texample.com/tsrec/a",
				"FAIL\texample.com/tsrec/c [build failed]",
				"?   \texample.com/tsrec/d\t[no test files]",
				"--- FAIL: TestBroken (0.00s)",
				"FAIL\texample.com/tsrec/b",
				"SKIPPED TESTS (3):",
				"5 passed, 6 failed, 1 skipped",
			},
		},
	}
	for _, tc := range tests {
		name := strings.TrimSuffix(tc.file, ".jsonl")
		if tc.ci {
			name += "_ci"
		}
		t.Run(name, func(t *testing.T) {
			in, err := os.Open(filepath.Join("testdata", tc.file))
			require.NoError(t, err)
			defer in.Close()
			var out bytes.Buffer
			got, err := run(in, &out, tc.ci)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			text := out.String()
			lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
			require.Equal(t, tc.wantLines[len(tc.wantLines)-1], lines[len(lines)-1], "closing line")
			at := 0
			for _, w := range tc.wantLines {
				i := strings.Index(text[at:], w)
				require.GreaterOrEqual(t, i, 0, "missing (or out of order) %q in:\n%s", w, text)
				at += i + len(w)
			}
			for _, l := range tc.absentLines {
				require.NotContains(t, lines, l)
			}
		})
	}
}

// Lines that are not test2json events (the go command's own messages)
// are copied through.
func TestRunCopiesOtherLines(t *testing.T) {
	var out bytes.Buffer
	s, err := run(strings.NewReader("go: downloading example.com/x v1.0.0\n{not json\n"), &out, false)
	require.NoError(t, err)
	require.Equal(t, Summary{}, s)
	require.Equal(t, "go: downloading example.com/x v1.0.0\n{not json\n0 passed, 0 failed, 0 skipped\n", out.String())
}

func TestServicePrefixesMatchTestenv(t *testing.T) {
	var want []string
	for _, s := range testenv.Services() {
		want = append(want, s.Prefix())
	}
	require.Equal(t, want, servicePrefixes)
}
