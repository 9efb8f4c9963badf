// Command testsummary reads `go test -json` on stdin and prints what a
// plain `go test` prints (each package's ok / FAIL / "no test files" line,
// build errors, and the output of every failed test), then every skipped
// test with its skip reason, then one closing line:
//
//	N passed, N failed, N skipped
//
// It exits 1 when anything failed. With -ci (scripts/test.sh passes it
// when CI=true) a skip whose reason starts with "needs neo4j: ",
// "needs python: " or "needs nats: " (internal/testenv) is a failure: CI
// provides those services, so such a test must run there. Standard library
// only. Lines on stdin that are not JSON (the go command's own messages)
// are copied through.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
)

// servicePrefixes start the skip reasons of tests that need an outside
// service (internal/testenv; TestServicePrefixesMatchTestenv keeps them
// equal).
var servicePrefixes = []string{"needs neo4j: ", "needs python: ", "needs nats: "}

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action     string
	Package    string
	ImportPath string
	Test       string
	Output     string
}

// testKey names one test of one package.
type testKey struct{ pkg, test string }

// Skip is one skipped test and its reason.
type Skip struct {
	Package, Test, Reason string
	// Required is true when the reason says the test needs a service.
	Required bool
}

// Summary is what a run amounted to.
type Summary struct {
	Passed, Failed, Skipped int
	Skips                   []Skip
	// FailedPackages failed without a failed test (build error, panic in
	// TestMain, timeout).
	FailedPackages []string
}

// fileLine is the "    file_test.go:12: " prefix of t.Log/t.Skip lines.
var fileLine = regexp.MustCompile(`^\s*[\w.\-]+\.go:\d+: ?`)

func main() {
	ci := flag.Bool("ci", os.Getenv("CI") == "true", "fail on a skip of a test that needs neo4j, python or nats (default: $CI == true)")
	flag.Parse()
	s, err := run(os.Stdin, os.Stdout, *ci)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(2)
	}
	if s.Failed > 0 {
		os.Exit(1)
	}
}

// run copies the progress of the stream in to out, then the skip list and
// the closing line. Under ci, skips that need a service count as failed.
func run(in io.Reader, out io.Writer, ci bool) (Summary, error) {
	var (
		s          Summary
		buf        = map[testKey][]string{} // output of running tests
		failedTest = map[string]bool{}      // packages with a failed test
	)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var ev event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &ev) != nil {
			fmt.Fprintln(out, string(line))
			continue
		}
		k := testKey{ev.Package, ev.Test}
		switch {
		case ev.Action == "build-output":
			fmt.Fprint(out, ev.Output)
		case ev.Test == "" && ev.Action == "output":
			if ev.Output != "PASS\n" {
				fmt.Fprint(out, ev.Output)
			}
		case ev.Test == "" && ev.Action == "fail":
			if !failedTest[ev.Package] {
				s.FailedPackages = append(s.FailedPackages, ev.Package)
			}
		case ev.Test == "":
			// start, pass, skip (no test files) of a package
		case ev.Action == "output":
			buf[k] = append(buf[k], ev.Output)
		case ev.Action == "pass":
			s.Passed++
			delete(buf, k)
		case ev.Action == "fail":
			s.Failed++
			failedTest[ev.Package] = true
			printFailure(out, buf[k])
			delete(buf, k)
		case ev.Action == "skip":
			sk := Skip{Package: ev.Package, Test: ev.Test, Reason: skipReason(buf[k])}
			sk.Required = slices.ContainsFunc(servicePrefixes, func(p string) bool { return strings.HasPrefix(sk.Reason, p) })
			s.Skips = append(s.Skips, sk)
			delete(buf, k)
		}
	}
	if err := sc.Err(); err != nil {
		return s, err
	}
	s.Failed += len(s.FailedPackages)
	for _, sk := range s.Skips {
		if ci && sk.Required {
			s.Failed++
		} else {
			s.Skipped++
		}
	}
	report(out, s, ci)
	return s, nil
}

// printFailure prints a failed test's output as plain go test does: the
// "--- FAIL" line first, then what the test logged; no RUN/PAUSE/CONT
// frames.
func printFailure(out io.Writer, lines []string) {
	var logged []string
	for _, o := range lines {
		switch {
		case strings.HasPrefix(o, "=== "):
		case strings.HasPrefix(o, "--- "):
			fmt.Fprint(out, o)
		default:
			logged = append(logged, o)
		}
	}
	for _, o := range logged {
		fmt.Fprint(out, o)
	}
}

// skipReason is what the test logged before it skipped, without the
// "=== RUN" / "--- SKIP" frames and the file:line prefixes.
func skipReason(lines []string) string {
	var parts []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- ") {
			continue
		}
		parts = append(parts, strings.TrimSpace(fileLine.ReplaceAllString(l, "")))
	}
	if len(parts) == 0 {
		return "(no reason given)"
	}
	return strings.Join(parts, " ")
}

func report(out io.Writer, s Summary, ci bool) {
	for _, p := range s.FailedPackages {
		fmt.Fprintf(out, "FAILED PACKAGE %s (build error, panic or timeout: see above)\n", p)
	}
	if len(s.Skips) > 0 {
		fmt.Fprintf(out, "\nSKIPPED TESTS (%d):\n", len(s.Skips))
		for _, sk := range s.Skips {
			mark := ""
			if ci && sk.Required {
				mark = "FAIL (CI provides this service) "
			}
			fmt.Fprintf(out, "  %s%s %s: %s\n", mark, sk.Package, sk.Test, sk.Reason)
		}
	}
	fmt.Fprintf(out, "%d passed, %d failed, %d skipped\n", s.Passed, s.Failed, s.Skipped)
}
