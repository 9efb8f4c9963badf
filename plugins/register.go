package plugins

import (
	"fmt"
	"slices"
	"sync"
)

// Registration is one registered plugin: the Go analog of a Python entry
// point in the "imbi.plugins" group. Name is informational and keys load
// errors; Load returns the plugin value.
type Registration struct {
	Name string
	Load func() (any, error)
}

// registrations is the explicit default registration set: the one piece of
// package-level mutable state, written from init functions and read by the
// registry's Load. ResetRegistrations clears it for tests.
var (
	regMu         sync.Mutex
	registrations []Registration
)

// Register adds a plugin value under an entry name, from the plugin
// package's init function (as Caddy modules do). It panics on an empty or
// duplicate name: both are programming errors found at start.
// p is validated when the registry loads, not here, so a bad plugin is a
// load error with a clear message rather than a crash.
func Register(name string, p any) {
	RegisterLoader(name, func() (any, error) { return p, nil })
}

// RegisterLoader is Register with a constructor that may fail; its error
// becomes the entry's load error.
func RegisterLoader(name string, load func() (any, error)) {
	if name == "" {
		panic("plugins: Register with empty name")
	}
	if load == nil {
		panic(fmt.Sprintf("plugins: Register %q with nil loader", name))
	}
	regMu.Lock()
	defer regMu.Unlock()
	if slices.ContainsFunc(registrations, func(r Registration) bool { return r.Name == name }) {
		panic(fmt.Sprintf("plugins: %q registered twice", name))
	}
	registrations = append(registrations, Registration{Name: name, Load: load})
}

// Registrations returns a copy of the registrations in registration order.
func Registrations() []Registration {
	regMu.Lock()
	defer regMu.Unlock()
	return slices.Clone(registrations)
}

// ResetRegistrations forgets every registration. Tests only.
func ResetRegistrations() {
	regMu.Lock()
	defer regMu.Unlock()
	registrations = nil
}
