// Package plugins is the Imbi plugin SDK for Go: the models, the six plugin
// kinds, webhook action descriptors, errors and template helpers that plugin
// authors import. It mirrors the Python library imbi_common.plugins (see
// docs/conformance.md for the mapping) in idiomatic Go.
//
// A plugin registers itself from its package's init function, the Go analog
// of a Python entry point:
//
//	func init() { plugins.Register("hello", HelloPlugin{}) }
//
// The worker binary imports the plugin package for its side effect and the
// registry (internal/registry) loads every registration at start.
package plugins
