package wire

// sensitive lists the lower-case header names whose values are redacted.
// It is spelled here, not read from testdata/schemas/sensitive-headers.json
// at init, so that wire imports nothing from this module;
// TestSensitiveHeadersAreTheSharedFile holds it equal to that file, which
// the Python client reads. It is never written.
var sensitive = map[string]struct{}{
	"authorization":               {},
	"cookie":                      {},
	"set-cookie":                  {},
	"proxy-authorization":         {},
	"x-hub-signature":             {},
	"x-hub-signature-256":         {},
	"x-gitlab-token":              {},
	"x-pagerduty-signature":       {},
	"x-sonar-webhook-hmac-sha256": {},
}

// SensitiveHeaders returns the lower-case names whose values are redacted.
func SensitiveHeaders() []string {
	out := make([]string, 0, len(sensitive))
	for h := range sensitive {
		out = append(out, h)
	}
	return out
}

// RedactHeaders returns a copy of h with sensitive values replaced by
// "[redacted]". Names compare case-insensitively.
func RedactHeaders(h map[string]string) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		if IsSensitiveHeader(k) {
			v = Redacted
		}
		out[k] = v
	}
	return out
}
