package plugins

import (
	"fmt"
	"log/slog"
)

// PluginContext is the per-call input the host builds (plugins-spec §4.9).
type PluginContext struct {
	ProjectID         string               `json:"project_id"`
	ProjectSlug       string               `json:"project_slug"`
	OrgSlug           string               `json:"org_slug"`
	TeamSlug          *string              `json:"team_slug"`
	Environment       *string              `json:"environment"`
	AssignmentOptions map[string]any       `json:"assignment_options"`
	ProjectLinks      map[string]string    `json:"project_links"`
	ProjectTypeSlugs  []string             `json:"project_type_slugs"`
	EnvironmentConfig map[string]any       `json:"environment_config"`
	ActorUserID       *string              `json:"actor_user_id"`
	Identity          *IdentityCredentials `json:"identity"`
}

// Event is what a webhook action receives about the delivery that
// triggered it (plugins-spec §6.5, the 06-05 "event" shape). Sensitive
// headers arrive as "[redacted]".
type Event struct {
	Type              string         `json:"type"`
	ThirdPartyService string         `json:"third_party_service"`
	AttributedTo      string         `json:"attributed_to"`
	Metadata          EventMetadata  `json:"metadata"`
	Payload           map[string]any `json:"payload"`
}

// EventMetadata carries the webhook id and the lower-cased request headers.
type EventMetadata struct {
	WebhookID string            `json:"webhook_id"`
	Headers   map[string]string `json:"headers"`
}

// Document returns the event as a generic JSON document, the value JSON
// Pointer selectors and CEL expressions are evaluated against (the body
// is under /payload).
func (e Event) Document() map[string]any {
	headers := make(map[string]any, len(e.Metadata.Headers))
	for k, v := range e.Metadata.Headers {
		headers[k] = v
	}
	payload := e.Payload
	if payload == nil {
		payload = map[string]any{}
	}
	return map[string]any{
		"type":                e.Type,
		"third_party_service": e.ThirdPartyService,
		"attributed_to":       e.AttributedTo,
		"metadata":            map[string]any{"webhook_id": e.Metadata.WebhookID, "headers": headers},
		"payload":             payload,
	}
}

// Credentials are a plugin's decrypted secrets, field name to value. They
// print and log as a redacted summary so a stray %v or slog attribute never
// leaks a value; read values by key.
type Credentials map[string]string

const redactedCredentials = "<credentials redacted>"

func (c Credentials) String() string   { return redactedCredentials }
func (c Credentials) GoString() string { return redactedCredentials }

// Format redacts under every verb (%v, %+v, %#v, %s, %q).
func (c Credentials) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redactedCredentials)) }

// LogValue keeps values out of slog output; only the key names are shown.
func (c Credentials) LogValue() slog.Value {
	return slog.StringValue(fmt.Sprintf("<credentials redacted: %d keys>", len(c)))
}
