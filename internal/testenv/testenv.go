// Package testenv is how a test says it needs an outside service. A test
// that cannot run without Neo4j, Python or a NATS server skips through
// this package, so its skip message starts with a fixed prefix
// ("needs neo4j: ", "needs python: ", "needs nats: "). scripts/test.sh runs
// the Go tests through tools/testsummary, which lists every skip with its
// reason at the end and, under CI=true, fails the run when a skip carries
// one of these prefixes: CI provides every service, so such a skip means a
// test did not run that must.
package testenv

import (
	"os"
	"testing"
)

// Service is an outside service a test may need.
type Service string

const (
	Neo4j  Service = "neo4j"
	Python Service = "python"
	NATS   Service = "nats"
)

// Services lists every Service.
func Services() []Service { return []Service{Neo4j, Python, NATS} }

// Prefix is the start of the skip message of a test that needs s.
func (s Service) Prefix() string { return "needs " + string(s) + ": " }

// Environment variables the services are found by (scripts/test.sh
// exports both). EnvNeo4jURL equals creds.EnvNeo4jURL (checked in
// internal/creds).
const (
	EnvNeo4jURL = "IMBI_NEO4J_URL"
	EnvPython   = "IMBI_TEST_PYTHON"
)

// Skip skips the test because it needs s; reason says what is missing and
// how to provide it.
func Skip(t testing.TB, s Service, reason string) {
	t.Helper()
	t.Skip(s.Prefix() + reason)
}

// PythonPath returns the interpreter IMBI_TEST_PYTHON names (the repo venv's,
// with pydantic and the client's dependencies), or skips the test.
func PythonPath(t testing.TB) string {
	t.Helper()
	py := os.Getenv(EnvPython)
	if py == "" {
		Skip(t, Python, EnvPython+" is not set: run scripts/test.sh (make test), which creates the venv (scripts/pyenv.sh) and sets it")
	}
	return py
}

// Neo4jURL returns IMBI_NEO4J_URL, or skips the test.
func Neo4jURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvNeo4jURL)
	if u == "" {
		Skip(t, Neo4j, EnvNeo4jURL+" is not set: run `scripts/neo4j.sh start && eval \"$(scripts/neo4j.sh env)\"` (scripts/test.sh does)")
	}
	return u
}
