package plugins

import "github.com/aweber-imbi/imbi-worker/internal/pluginreg"

// Register adds a plugin under an entry name, from the plugin package's
// init function, as Caddy modules register (the Go analog of a Python
// entry point in the "imbi.plugins" group). The name keys load errors.
//
// Register panics on an empty or already registered name: both are
// programming errors found at start. p itself is checked when the worker's
// registry loads (manifest, kind, api_version, action catalogue), so a bad
// plugin is a load error with a clear message, not a crash.
func Register(name string, p Plugin) {
	RegisterLoader(name, func() (Plugin, error) { return p, nil })
}

// RegisterLoader is Register with a constructor that may fail; its error
// (or panic) becomes the entry's load error. It panics on an empty or
// already registered name and on a nil load.
func RegisterLoader(name string, load func() (Plugin, error)) {
	var generic func() (any, error)
	if load != nil {
		generic = func() (any, error) {
			p, err := load()
			if p == nil {
				return nil, err // an untyped nil, not a nil Plugin in an any
			}
			return p, err
		}
	}
	if err := pluginreg.Add(name, generic); err != nil {
		panic(err)
	}
}
