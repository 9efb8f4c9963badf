package dispatch

import (
	"context"

	"github.com/aweber-imbi/imbi-worker/plugins"
)

// CredentialSource loads a plugin's decrypted credentials. Dispatch owns
// this interface and names it only in types its implementations already
// know, so an implementation (internal/creds on Neo4j) does not import
// dispatch.
//
// m is the registered plugin's manifest (slug, auth_type, credential
// fields); pluginID is the Plugin node id from the envelope ("" when it
// has none); thirdPartyService is event.third_party_service, used with
// m.Slug to find the Plugin node when pluginID is "".
//
// Errors: *plugins.PluginCredentialsMissing is permanent
// (credentials_missing); *plugins.PluginUnavailableError is retryable
// (unavailable). Implementations never put a secret in an error text.
type CredentialSource interface {
	Credentials(ctx context.Context, m plugins.PluginManifest, pluginID, thirdPartyService string) (plugins.Credentials, error)
}
