package remote_test

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Every §4 class a remote action can reach, through a real host: the
// settle call shows in the dead letter (attempts 1 = dead-lettered at
// once; attempts = --max-attempts = nak'd and retried) and its reason.
func TestRemoteClasses(t *testing.T) {
	e := newEnv(t)
	w := startWorker(t, e.url, workerOpts{args: []string{"--remote-timeout-cap", "1s"}})
	startHost(t, e.nc, e.url, "host")
	// The host's announce made the worker load the catalog.
	w.waitLog(t, "remote plugin catalog loaded", 10*time.Second)

	// `imbi-worker actions --nats-url` lists remote actions with their
	// schema, package and host.
	out, err := exec.Command(worker(t), "actions", "--json", "--nats-url", e.url).Output()
	require.NoError(t, err)
	var rep struct {
		Plugins []struct {
			Slug, Package, Host string
			Actions             []struct {
				Handler      string
				ConfigSchema map[string]any `json:"config_schema"`
			}
		}
	}
	require.NoError(t, json.Unmarshal(out, &rep))
	var found bool
	for _, p := range rep.Plugins {
		if p.Slug != "example-py" {
			continue
		}
		found = true
		require.Equal(t, "python:imbi-example-plugin", p.Package)
		require.NotEmpty(t, p.Host)
		require.Equal(t, "example-py#record", p.Actions[0].Handler)
		require.Contains(t, p.Actions[0].ConfigSchema["required"], "record_to")
	}
	require.True(t, found, "example-py listed: %s", out)

	rec := filepath.Join(t.TempDir(), "calls.jsonl")
	cases := []struct {
		name, handler string
		cfg           any
		// want: "" = success; else dead-letter reason, last reason, attempts.
		reason, last string
		attempts     int
	}{
		{name: "success", handler: "example-py#record", cfg: map[string]any{"record_to": rec, "note": "hi"}},
		{name: "credentials-missing", handler: "example-py#needs_credentials", cfg: map[string]any{},
			reason: "credentials_missing", attempts: 1},
		{name: "invalid-config-worker-schema", handler: "example-py#record", cfg: map[string]any{"note": 1},
			reason: "invalid_config", attempts: 1},
		{name: "unknown-action", handler: "example-py#nope", cfg: map[string]any{},
			reason: "unknown_handler", attempts: 1},
		{name: "unknown-plugin", handler: "nope-py#record", cfg: map[string]any{},
			reason: "unknown_handler", attempts: 1},
		{name: "unavailable", handler: "example-py#unavailable", cfg: map[string]any{},
			reason: "max_attempts", last: "unavailable", attempts: 3},
		{name: "action-failed", handler: "example-py#boom", cfg: map[string]any{},
			reason: "max_attempts", last: "action_failed", attempts: 3},
		{name: "timeout", handler: "example-py#slow", cfg: map[string]any{"seconds": 5},
			reason: "max_attempts", last: "timeout", attempts: 3},
		{name: "rate-limited", handler: "example-py#rate_limited", cfg: map[string]any{"seconds": 0.3},
			reason: "max_attempts", last: "rate_limited", attempts: 3},
	}
	start := time.Now()
	for i, c := range cases {
		e.publish(event(fmt.Sprintf("cls-%d-%s", i, c.name), c.handler, c.cfg, ""))
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := fmt.Sprintf("cls-%d-%s", i, c.name)
			if c.reason == "" {
				e.waitDone(id, 20*time.Second)
				require.NotContains(t, e.deadLetters(), id)
				return
			}
			dl := e.waitDead(id, 30*time.Second)
			require.Equal(t, c.reason, dl.Reason, dl.Error)
			require.Equal(t, c.last, dl.LastReason, dl.Error)
			require.Equal(t, strconv.Itoa(c.attempts), dl.Attempts)
			require.False(t, e.done(id))
		})
	}
	// The success ran once on the host with what the worker sent.
	calls := records(t, rec)
	require.Len(t, calls, 1)
	require.Equal(t, "hi", calls[0]["note"])
	require.Equal(t, "checkout", calls[0]["project_slug"])
	require.Equal(t, "acme/checkout", calls[0]["external_identifier"])
	require.Equal(t, "push", calls[0]["event_type"])
	// The rate limit's retry_at was honoured: two waits of ≥ 0.3 s.
	require.Greater(t, time.Since(start), 600*time.Millisecond)
	// The worker's cap cut the 5 s sleep: 3 attempts took far less than 15 s.
	require.Less(t, time.Since(start), 14*time.Second)
}
