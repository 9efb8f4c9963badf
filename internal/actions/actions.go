// Package actions holds the built-in webhook plugins shipped in the
// imbi-worker binary. Importing it registers them; each plugin lives in its
// own sub-package (imported below) so it can be tested alone.
package actions

import (
	// gateway-actions#{update_project,create_release,add_deployment_event,ingest_sbom}
	_ "github.com/aweber-imbi/imbi-worker/internal/actions/gatewayactions"
	_ "github.com/aweber-imbi/imbi-worker/internal/actions/httprequest" // http#request
)
