package wire

import (
	"encoding/json"
	"fmt"
	"strings"

	imbiworker "github.com/aweber-imbi/imbi-worker"
)

// sensitive is loaded once from the shared data file (normalized name ->
// name as listed); it is never written after init.
var sensitive = loadSensitive()

func loadSensitive() map[string]string {
	raw, err := imbiworker.Schemas.ReadFile(SensitiveHdrsFile)
	if err != nil {
		panic(fmt.Sprintf("wire: embedded %s: %v", SensitiveHdrsFile, err))
	}
	var f struct {
		Headers []string `json:"headers"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		panic(fmt.Sprintf("wire: %s: %v", SensitiveHdrsFile, err))
	}
	m := make(map[string]string, len(f.Headers)) // normalized -> as listed
	for _, h := range f.Headers {
		m[normalizeName(h)] = h
	}
	return m
}

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
