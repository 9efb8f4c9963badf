// Package registry loads registered plugins (plugins.Registrations) into an
// immutable snapshot and serves lookups: Python's load_plugins,
// reload_plugins, get_plugin and list_plugins (plugins-spec §7).
//
// SKELETON: validation order, LoadResult errors and the schema-collision
// check are completed by the foundation issue.
package registry

import (
	"fmt"
	"sync"

	"github.com/aweber-imbi/imbi-worker/plugins"
)

// Entry is one loaded plugin (Python's RegistryEntry). It is immutable:
// holders keep a valid entry across reloads.
type Entry struct {
	Plugin         plugins.Plugin
	Manifest       plugins.PluginManifest
	PackageName    string
	PackageVersion string

	actions map[string]plugins.ActionDescriptor
	order   []string
}

// Action returns the webhook action named name.
func (e *Entry) Action(name string) (plugins.ActionDescriptor, bool) {
	a, ok := e.actions[name]
	return a, ok
}

// Actions returns the webhook action catalogue in declaration order.
func (e *Entry) Actions() []plugins.ActionDescriptor {
	out := make([]plugins.ActionDescriptor, 0, len(e.order))
	for _, n := range e.order {
		out = append(out, e.actions[n])
	}
	return out
}

// IsWebhook reports whether the plugin implements WebhookActionPlugin.
func (e *Entry) IsWebhook() bool {
	_, ok := e.Plugin.(plugins.WebhookActionPlugin)
	return ok
}

// LoadResult mirrors Python's LoadResult: loaded slugs in order, errors
// by registration name, skipped registration names (unsupported api_version).
type LoadResult struct {
	Loaded  []string
	Errors  map[string]string
	Skipped []string
}

// Registry is a set of loaded plugins. Reads are safe during Reload.
type Registry struct {
	mu      sync.RWMutex
	entries map[string]*Entry
	order   []string
	source  func() []plugins.Registration
}

// New returns an empty registry that loads from source (nil: the default
// registration set, plugins.Registrations).
func New(source func() []plugins.Registration) *Registry {
	if source == nil {
		source = plugins.Registrations
	}
	return &Registry{entries: map[string]*Entry{}, source: source}
}

// Load discovers every registration and swaps the snapshot in atomically.
func (r *Registry) Load() (LoadResult, error) {
	res := LoadResult{Errors: map[string]string{}}
	entries := map[string]*Entry{}
	var order []string
	for _, reg := range r.source() {
		v, err := reg.Load()
		if err != nil {
			res.Errors[reg.Name] = err.Error()
			continue
		}
		p, ok := v.(plugins.Plugin)
		if !ok {
			res.Errors[reg.Name] = "Missing or invalid manifest attribute"
			continue
		}
		m := p.Manifest()
		e := &Entry{Plugin: p, Manifest: m, PackageName: "unknown", PackageVersion: "unknown", actions: map[string]plugins.ActionDescriptor{}}
		if w, ok := p.(plugins.WebhookActionPlugin); ok {
			acts, err := w.Actions()
			if err != nil {
				res.Errors[reg.Name] = "actions() raised: " + err.Error()
				continue
			}
			for _, a := range acts {
				e.actions[a.Name] = a
				e.order = append(e.order, a.Name)
			}
		}
		if _, dup := entries[m.Slug]; dup {
			res.Errors[reg.Name] = fmt.Sprintf("Duplicate plugin slug: %s", m.Slug)
			continue
		}
		entries[m.Slug] = e
		order = append(order, m.Slug)
		res.Loaded = append(res.Loaded, m.Slug)
	}
	r.mu.Lock()
	r.entries, r.order = entries, order
	r.mu.Unlock()
	return res, nil
}

// Get returns the entry for slug or a *plugins.PluginNotFoundError whose
// message is the slug.
func (r *Registry) Get(slug string) (*Entry, error) {
	r.mu.RLock()
	e, ok := r.entries[slug]
	r.mu.RUnlock()
	if !ok {
		return nil, &plugins.PluginNotFoundError{Message: slug}
	}
	return e, nil
}

// List returns the entries in load order.
func (r *Registry) List() []*Entry {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]*Entry, 0, len(r.order))
	for _, s := range r.order {
		out = append(out, r.entries[s])
	}
	return out
}
