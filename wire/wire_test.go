package wire

import (
	"encoding/json"
	"os"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// The embedded list is the repo's data file, the one the Python client
// reads too: same names, nothing added or lost.
func TestSensitiveHeadersAreTheSharedFile(t *testing.T) {
	raw, err := os.ReadFile("../" + SensitiveHdrsFile)
	require.NoError(t, err)
	var f struct {
		Headers     []string `json:"headers"`
		Replacement string   `json:"replacement"`
	}
	require.NoError(t, json.Unmarshal(raw, &f))
	got := SensitiveHeaders()
	slices.Sort(got)
	want := slices.Clone(f.Headers)
	slices.Sort(want)
	require.Equal(t, want, got)
	require.Equal(t, f.Replacement, Redacted)
	// plugins-spec §6.5 names these; losing one would leak it.
	for _, h := range []string{"authorization", "cookie", "set-cookie", "proxy-authorization",
		"x-hub-signature", "x-hub-signature-256", "x-gitlab-token", "x-pagerduty-signature",
		"x-sonar-webhook-hmac-sha256"} {
		require.True(t, IsSensitiveHeader(h), h)
	}
}

func TestRedactHeaders(t *testing.T) {
	tests := []struct {
		name string
		in   map[string]string
		want map[string]string
	}{
		{"nil", nil, map[string]string{}},
		{"plain kept", map[string]string{"x-github-event": "push"}, map[string]string{"x-github-event": "push"}},
		{"lower case", map[string]string{"authorization": "Bearer s3cret"}, map[string]string{"authorization": Redacted}},
		{"any case", map[string]string{"Authorization": "Bearer s3cret", "COOKIE": "a=b"},
			map[string]string{"Authorization": Redacted, "COOKIE": Redacted}},
		{"mixed", map[string]string{"X-Hub-Signature-256": "sha256=abc", "user-agent": "GitHub"},
			map[string]string{"X-Hub-Signature-256": Redacted, "user-agent": "GitHub"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := make(map[string]string, len(tc.in))
			for k, v := range tc.in {
				in[k] = v
			}
			require.Equal(t, tc.want, RedactHeaders(in))
			for k, v := range tc.in {
				require.Equal(t, v, in[k], "input must not be modified")
			}
		})
	}
}

func TestSubject(t *testing.T) {
	h, err := ParseHandler("gateway-actions#create_release")
	require.NoError(t, err)
	require.Equal(t, "imbi.actions.gateway-actions.create_release", Subject(DefaultSubjectPrefix, h))
}

func TestIsDLQHeader(t *testing.T) {
	for name, want := range map[string]bool{
		DLQReason: true, "imbi-dlq-reason": true, "IMBI-DLQ-ATTEMPTS": true, DLQRedacted: true,
		"Imbi-Dlq": false, "Imbi-Other": false, HeaderMsgID: false, "": false,
	} {
		require.Equal(t, want, IsDLQHeader(name), name)
	}
}
