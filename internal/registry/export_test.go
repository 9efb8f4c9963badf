package registry

import "slices"

// Test access to the registry's unexported checks.
var (
	ValidateNoCollisions = validateNoCollisions
	Kinds                = kinds
)

// CoreVertexLabels returns the core vertex labels.
func CoreVertexLabels() []string { return slices.Clone(coreVertexLabels) }
