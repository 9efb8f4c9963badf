// Package pluginreg holds the default registration set: the one piece of
// package-level mutable state behind the plugin SDK. plugins.Register
// writes it from plugin packages' init functions; internal/registry reads
// it at load. It lives here, not in plugins, so that reading and resetting
// the set are not public API of the SDK.
package pluginreg

import (
	"errors"
	"fmt"
	"slices"
	"sync"
)

// Registration is one registered plugin: the Go analog of a Python entry
// point in the "imbi.plugins" group. Name keys load errors; Load returns
// the plugin value (the registry checks what it is).
type Registration struct {
	Name string
	Load func() (any, error)
}

// ErrEmptyName rejects a registration without a name.
var ErrEmptyName = errors.New("plugins: Register with empty name")

// DuplicateNameError rejects a second registration under the same name.
type DuplicateNameError struct{ Name string }

func (e *DuplicateNameError) Error() string {
	return fmt.Sprintf("plugins: %q registered twice", e.Name)
}

// NilLoaderError rejects a registration without a loader.
type NilLoaderError struct{ Name string }

func (e *NilLoaderError) Error() string {
	return fmt.Sprintf("plugins: Register %q with nil loader", e.Name)
}

var (
	mu   sync.Mutex
	regs []Registration
)

// Add appends a registration to the default set. The name must be
// non-empty and unused and load non-nil; the value itself is checked at
// load, so a bad plugin is a load error rather than a crash.
func Add(name string, load func() (any, error)) error {
	if name == "" {
		return ErrEmptyName
	}
	if load == nil {
		return &NilLoaderError{Name: name}
	}
	mu.Lock()
	defer mu.Unlock()
	if slices.ContainsFunc(regs, func(r Registration) bool { return r.Name == name }) {
		return &DuplicateNameError{Name: name}
	}
	regs = append(regs, Registration{Name: name, Load: load})
	return nil
}

// All returns a copy of the default set in registration order.
func All() []Registration {
	mu.Lock()
	defer mu.Unlock()
	return slices.Clone(regs)
}

// Reset forgets every registration. Tests only; it returns a function
// that restores the set as it was.
func Reset() (restore func()) {
	mu.Lock()
	defer mu.Unlock()
	saved := regs
	regs = nil
	return func() {
		mu.Lock()
		defer mu.Unlock()
		regs = saved
	}
}
