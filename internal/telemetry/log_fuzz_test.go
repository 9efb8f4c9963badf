package telemetry

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// FuzzRedactingHandler: whatever the key, nesting and format, a value
// logged under a secret-looking key (as an attribute, in a group, or as a
// map entry) never reaches the output, and JSON output stays valid.
func FuzzRedactingHandler(f *testing.F) {
	f.Add("authorization", "Bearer abc", "headers", false)
	f.Add("X-Hub-Signature-256", "sha256=deadbeef", "metadata", true)
	f.Add("github_token", "ghp_x", "", false)
	f.Add("ce_id", "d-1.0", "g", true)
	f.Add("", "", "", false)
	f.Fuzz(func(t *testing.T, key, value, group string, text bool) {
		secret := "CANARY" + value + "YRANAC" // unlikely to appear by accident
		format := LogFormatJSON
		if text {
			format = LogFormatText
		}
		var buf bytes.Buffer
		l, err := NewLogger(&buf, "debug", format)
		if err != nil {
			t.Fatal(err)
		}
		l.Info("attr", key, secret)
		l.Info("map", "headers", map[string]string{key: secret})
		l.Info("nested", "event", map[string]any{"metadata": map[string]any{key: secret}})
		if group != "" {
			l.WithGroup(group).With(key, secret).Info("group")
		}
		out := buf.String()
		if IsSecretKey(key) && strings.Contains(out, secret) {
			t.Fatalf("secret under key %q leaked:\n%s", key, out)
		}
		if !IsSecretKey(key) && !strings.Contains(out, "CANARY") {
			t.Fatalf("ordinary key %q lost its value:\n%s", key, out)
		}
		if !text {
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				if !json.Valid([]byte(line)) {
					t.Fatalf("invalid JSON line: %s", line)
				}
			}
		}
	})
}
