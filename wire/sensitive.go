package wire

import "strings"

// sensitiveNames is the one list of names whose values are redacted, as
// testdata/schemas/sensitive-headers.json lists them (header names and JSON
// body keys alike). It is spelled here, not read from that file at init, so
// that wire imports nothing from this module; TestSensitiveHeadersAreTheSharedFile
// holds it equal to the file, which the Python client reads.
var sensitiveNames = [...]string{
	"authorization",
	"cookie",
	"set-cookie",
	"proxy-authorization",
	"x-hub-signature",
	"x-hub-signature-256",
	"x-gitlab-token",
	"x-pagerduty-signature",
	"x-sonar-webhook-hmac-sha256",
	"x-api-key",
	"x-auth-token",
	"private-token",
	"api_key",
	"access_token",
	"refresh_token",
	"id_token",
	"password",
	"secret",
	"client_secret",
}

// sensitive maps each normalized name to the name as listed; built once,
// never written after init.
var sensitive = func() map[string]string {
	m := make(map[string]string, len(sensitiveNames))
	for _, n := range sensitiveNames {
		m[normalizeName(n)] = n
	}
	return m
}()

// normalizeName is how sensitive names compare: case-insensitively, with
// '_' and '-' equal (access_token, Access-Token and ACCESS_TOKEN are one
// name).
func normalizeName(name string) string {
	for i := 0; i < len(name); i++ {
		if c := name[i]; c == '_' || c >= 'A' && c <= 'Z' || c >= 0x80 {
			return strings.ReplaceAll(strings.ToLower(name), "_", "-")
		}
	}
	return name // already normal: no allocation (log keys, header names)
}

// IsSensitiveName reports whether a header name or a JSON body key names a
// value that must be redacted: the one list of SensitiveHdrsFile, for
// headers and body keys alike (internal/redact applies it).
func IsSensitiveName(name string) bool {
	_, ok := sensitive[normalizeName(name)]
	return ok
}

// SensitiveHeaders returns the names whose values are redacted, as listed
// in the shared file.
func SensitiveHeaders() []string {
	out := make([]string, 0, len(sensitive))
	for _, h := range sensitive {
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
