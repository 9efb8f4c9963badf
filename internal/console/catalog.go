package console

import (
	"bytes"
	"encoding/json"
)

// catalog is the part of `imbi-worker actions --json` the actions page
// shows.
type catalog struct {
	Plugins []struct {
		Slug    string `json:"slug"`
		Name    string `json:"name"`
		Kind    string `json:"kind"`
		Package string `json:"package"`
		Version string `json:"version"`
		Actions []struct {
			Handler        string          `json:"handler"`
			Label          string          `json:"label"`
			Description    *string         `json:"description"`
			TimeoutSeconds *float64        `json:"timeout_seconds"`
			ConfigSchema   json.RawMessage `json:"config_schema"`
			// Schema is ConfigSchema indented, for the page.
			Schema string `json:"-"`
		} `json:"actions"`
	} `json:"plugins"`
	Errors map[string]string `json:"errors"`
}

func decodeCatalog(v any) (catalog, error) {
	var c catalog
	b, err := json.Marshal(v)
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, err
	}
	for i := range c.Plugins {
		for j := range c.Plugins[i].Actions {
			a := &c.Plugins[i].Actions[j]
			var buf bytes.Buffer
			if json.Indent(&buf, a.ConfigSchema, "", "  ") == nil {
				a.Schema = buf.String()
			}
		}
	}
	return c, nil
}
