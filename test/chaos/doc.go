// Package chaos holds the reliability suites of issue 6 (docs/reliability.md):
// the crash/restart suite with real imbi-worker-chaos and nats-server
// processes, the Neo4j outage run, the poison corpus (testdata/poison), the
// secret canary and the slow/stuck action tests. Everything is in the
// _test.go files; chaosplugin is the test-only plugin they run and
// cmd/imbi-worker-chaos the test binary that carries it.
package chaos
