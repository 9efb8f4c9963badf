package plugins

import (
	"fmt"
	"time"
)

// IdentityCredentials are a user's materialised credentials (§4.10). They
// print as "<IdentityCredentials redacted>"; JSON is not redacted.
type IdentityCredentials struct {
	AccessToken  string         `json:"access_token"`
	TokenType    string         `json:"token_type"`
	ExpiresAt    *time.Time     `json:"expires_at"`
	RefreshToken *string        `json:"refresh_token"`
	Scopes       []string       `json:"scopes"`
	Extra        map[string]any `json:"extra"`
}

const redactedIdentity = "<IdentityCredentials redacted>"

func (c IdentityCredentials) String() string             { return redactedIdentity }
func (c IdentityCredentials) GoString() string           { return redactedIdentity }
func (c IdentityCredentials) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redactedIdentity)) }
