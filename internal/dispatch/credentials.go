package dispatch

import (
	"context"

	"github.com/aweber-imbi/imbi-worker/plugins"
)

// CredentialRequest names the plugin whose credentials an action needs.
type CredentialRequest struct {
	// PluginID is the Plugin node id from the envelope (may be empty).
	PluginID string
	// ThirdPartyService is event.third_party_service, used with the
	// manifest's slug to find the Plugin node when PluginID is empty.
	ThirdPartyService string
	// Manifest is the registered plugin's manifest (slug, auth_type,
	// credential fields).
	Manifest plugins.PluginManifest
}

// CredentialSource loads a plugin's decrypted credentials. Dispatch owns
// this interface; internal/creds implements it on Neo4j.
//
// Errors: *plugins.PluginCredentialsMissing is permanent
// (credentials_missing); *plugins.PluginUnavailableError is retryable
// (unavailable). Implementations never put a secret in an error text.
type CredentialSource interface {
	Credentials(ctx context.Context, req CredentialRequest) (plugins.Credentials, error)
}
