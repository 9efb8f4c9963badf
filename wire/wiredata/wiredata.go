// Package wiredata is the typed CloudEvent data of the wire contract
// (wire-contract §3). It is apart from package wire because it carries the
// plugin SDK's models (plugins.PluginContext, plugins.Event), while wire
// itself is a leaf that imports nothing from this module.
package wiredata

import (
	"github.com/aweber-imbi/imbi-worker/plugins"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// ActionData is the CloudEvent data (wire-contract §3; schema
// testdata/schemas/action-envelope.v1.json).
type ActionData struct {
	Rule               wire.Rule             `json:"rule"`
	Plugin             *wire.PluginRef       `json:"plugin,omitempty"`
	Context            plugins.PluginContext `json:"context"`
	ExternalIdentifier string                `json:"external_identifier"`
	Event              plugins.Event         `json:"event"`
}
