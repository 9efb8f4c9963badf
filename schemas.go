// Package imbiworker holds the files of the wire contract that Go and
// Python share: the envelope JSON Schemas and the sensitive-header list
// under testdata/schemas. They are embedded here so the binary needs no
// files at run time; the Python client reads the same files from the repo.
package imbiworker

import "embed"

// Schemas is testdata/schemas: action-envelope.v<N>.json and
// sensitive-headers.json.
//
//go:embed testdata/schemas/*.json
var Schemas embed.FS
