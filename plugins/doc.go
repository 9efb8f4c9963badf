// Package plugins is the Imbi plugin SDK for Go: the models, the six plugin
// kinds, webhook action descriptors, errors and template helpers that plugin
// authors import. It mirrors the Python library imbi_common.plugins
// (imbi-common 2.5.0) in idiomatic Go; docs/conformance.md maps every
// Python test to its Go counterpart and lists the adaptations.
//
// A plugin registers itself from its package's init function, the Go analog
// of a Python entry point:
//
//	func init() { plugins.Register("hello", HelloPlugin{}) }
//
// The worker binary imports the plugin package for its side effect and the
// worker's registry loads every registration at start. Register panics on
// an empty or reused name; a bad plugin value (no manifest, wrong kind,
// unsupported api_version, bad action catalogue) is a load error, not a
// crash. The examples show a plugin of each kind.
//
// # Kinds and capabilities
//
// A plugin is a value with a Manifest. Its manifest's plugin_type names the
// kind it implements: ConfigurationPlugin, LogsPlugin, IdentityPlugin,
// DeploymentPlugin, LifecyclePlugin or WebhookActionPlugin. Python's
// optional methods are small interfaces (LogsHistogrammer, IdentityRevoker,
// DeploymentTagCreator, ...); call them through the package helpers
// (Histogram, Revoke, CreateTag, ...), which return Python's defaults when
// a plugin does not implement one.
//
// # Models
//
// Every model encodes and decodes as Python's pydantic model does: the same
// JSON names, every field emitted in declaration order, defaults applied to
// absent keys, lax coercion of ints and bools, and a *ValidationError naming
// the offending field (pydantic's loc, e.g. "options.0.label"). Build
// manifests with NewManifest (Python's defaults) and check Go-built values
// with Validate.
//
// # Webhook actions
//
// NewAction[C] builds an action descriptor whose handler_config JSON Schema
// is generated from the config type C; the action receives a decoded,
// validated C. Return Permanent(err) for failures that must not be retried
// and RetryAfter(err, d) when the upstream says when to retry.
package plugins
