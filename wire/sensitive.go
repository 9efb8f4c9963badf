package wire

import (
	"encoding/json"
	"fmt"

	imbiworker "github.com/aweber-imbi/imbi-worker"
)

// sensitive is loaded once from the shared data file; it is never written
// after init.
var sensitive = loadSensitive()

func loadSensitive() map[string]struct{} {
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
	m := make(map[string]struct{}, len(f.Headers))
	for _, h := range f.Headers {
		m[h] = struct{}{}
	}
	return m
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
