// Package registry loads the plugins registered with plugins.Register
// (kept in internal/pluginreg) into an
// immutable snapshot and serves lookups: Python's load_plugins,
// reload_plugins, get_plugin and list_plugins (plugins-spec §7).
//
// A registration is the Go analog of a Python entry point in the
// "imbi.plugins" group: its name keys load errors and skips, as the
// entry-point name does. Loading follows §7.3's order exactly (first
// failure wins) with the error texts adapted to Go (docs/conformance.md).
package registry

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/aweber-imbi/imbi-worker/internal/pluginreg"
	"github.com/aweber-imbi/imbi-worker/plugins"
)

// Entry is one loaded plugin (Python's RegistryEntry). It is immutable:
// holders keep a valid entry across reloads.
type Entry struct {
	// Name is the registration name (Python's entry-point name).
	Name           string
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

// snapshot is one immutable generation of the registry.
type snapshot struct {
	entries map[string]*Entry
	order   []string
}

// Registry is a set of loaded plugins. Reads never block: they see the
// current snapshot, which Load replaces atomically.
type Registry struct {
	source func() []pluginreg.Registration
	log    *slog.Logger

	current atomic.Pointer[snapshot]
	// loadMu serialises loads so two concurrent reloads cannot publish
	// out of order; readers do not take it.
	loadMu  sync.Mutex
	lastRes LoadResult
	lastErr error
}

// Option customises a Registry.
type Option func(*Registry)

// WithLogger sets the logger for load warnings and infos (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(r *Registry) {
		if l != nil {
			r.log = l
		}
	}
}

// New returns an empty registry that loads from source (nil: the default
// registration set that plugins.Register writes, pluginreg.All).
func New(source func() []pluginreg.Registration, opts ...Option) *Registry {
	if source == nil {
		source = pluginreg.All
	}
	r := &Registry{source: source, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, o := range opts {
		o(r)
	}
	r.current.Store(&snapshot{entries: map[string]*Entry{}})
	return r
}

var defaultRegistry = sync.OnceValue(func() *Registry {
	r := New(nil, WithLogger(slog.Default()))
	_, _ = r.Load() // the result is kept; LastLoad reports it
	return r
})

// Default returns the process registry over pluginreg.All, loaded
// on first use. Its load result is LastLoad.
func Default() *Registry { return defaultRegistry() }

// LastLoad returns the result and error of the most recent Load (zero
// values before the first one).
func (r *Registry) LastLoad() (LoadResult, error) {
	r.loadMu.Lock()
	defer r.loadMu.Unlock()
	return r.lastRes, r.lastErr
}

// Reload is Load with an info log (Python's reload_plugins).
func (r *Registry) Reload() (LoadResult, error) {
	r.log.Info("Reloading plugin registry")
	return r.Load()
}

// Load discovers every registration, validates it (plugins-spec §7.3),
// checks the graph-schema collisions (§7.4) and swaps the new snapshot in
// (§7.5). A collision is returned as error and keeps the previous
// snapshot; per-registration problems are in LoadResult.
func (r *Registry) Load() (LoadResult, error) {
	r.loadMu.Lock()
	defer r.loadMu.Unlock()
	res, err := r.load()
	r.lastRes, r.lastErr = res, err
	return res, err
}

func (r *Registry) load() (LoadResult, error) {
	res := LoadResult{Loaded: []string{}, Errors: map[string]string{}, Skipped: []string{}}
	next := &snapshot{entries: map[string]*Entry{}}
	for _, reg := range r.source() {
		e, skipped, err := r.loadOne(reg)
		switch {
		case err != nil:
			res.Errors[reg.Name] = err.Error()
			r.log.Error("Failed to load plugin", "registration", reg.Name, "error", err.Error())
			continue
		case skipped:
			res.Skipped = append(res.Skipped, reg.Name)
			continue
		}
		if _, dup := next.entries[e.Manifest.Slug]; dup {
			msg := "Duplicate plugin slug: " + e.Manifest.Slug
			res.Errors[reg.Name] = msg
			r.log.Error(msg, "registration", reg.Name)
			continue
		}
		next.entries[e.Manifest.Slug] = e
		next.order = append(next.order, e.Manifest.Slug)
		res.Loaded = append(res.Loaded, e.Manifest.Slug)
		r.log.Info(fmt.Sprintf("Loaded plugin %q v%s (slug=%q, api_version=%d)",
			reg.Name, e.PackageVersion, e.Manifest.Slug, e.Manifest.APIVersion))
	}
	manifests := make([]plugins.PluginManifest, 0, len(next.order))
	for _, s := range next.order {
		manifests = append(manifests, next.entries[s].Manifest)
	}
	if err := validateNoCollisions(manifests); err != nil {
		r.log.Error(err.Error())
		return res, err
	}
	r.current.Store(next)
	return res, nil
}

// loadOne runs §7.3 steps 1–7 for one registration.
func (r *Registry) loadOne(reg pluginreg.Registration) (e *Entry, skipped bool, err error) {
	// Step 1: load. A panicking constructor is a load error, not a crash.
	v, err := guard(reg.Load)
	if err != nil {
		return nil, false, err
	}
	// Step 2: a manifest. A Go value has one when it implements Plugin;
	// an invalid manifest is Python's failing class body (step 1 text).
	p, ok := v.(plugins.Plugin)
	if !ok || isNilValue(v) {
		return nil, false, errors.New("Missing or invalid manifest attribute")
	}
	m, err := guard(func() (plugins.PluginManifest, error) { return p.Manifest(), nil })
	if err != nil {
		return nil, false, err
	}
	m = m.WithDefaults()
	if err := m.Validate(); err != nil {
		return nil, false, err
	}
	// Steps 3–4: implements a kind, and the kind plugin_type names.
	if err := checkKind(p, m); err != nil {
		return nil, false, err
	}
	// Step 5: api_version.
	if !slices.Contains(supportedAPIVersions, m.APIVersion) {
		r.log.Warn(fmt.Sprintf("Skipping plugin %q: unsupported api_version %d (supported: %v)",
			reg.Name, m.APIVersion, supportedAPIVersions), "registration", reg.Name)
		return nil, true, nil
	}
	// Step 7 (built first; the catalogue goes into it).
	pkgName, pkgVersion := packageOf(p)
	e = &Entry{Name: reg.Name, Plugin: p, Manifest: m, PackageName: pkgName,
		PackageVersion: pkgVersion, actions: map[string]plugins.ActionDescriptor{}}
	// Step 6: the webhook catalogue.
	if w, ok := p.(plugins.WebhookActionPlugin); ok {
		if err := r.loadCatalogue(reg.Name, w, e); err != nil {
			return nil, false, err
		}
	}
	return e, false, nil
}

// loadCatalogue calls Actions once and checks what it returned.
func (r *Registry) loadCatalogue(name string, w plugins.WebhookActionPlugin, e *Entry) error {
	acts, err := guard(w.Actions)
	if err != nil {
		return fmt.Errorf("actions() raised: %s", err.Error())
	}
	// Python's "not a list / foreign items" has one Go analogue: a
	// descriptor not built by NewAction (it has no schema and no code).
	for _, a := range acts {
		if !a.Valid() {
			return errors.New("actions() must return list[ActionDescriptor]")
		}
	}
	if len(acts) == 0 {
		r.log.Warn(fmt.Sprintf("Webhook plugin '%s' exposes no actions; the plugin is inert", name),
			"registration", name)
	}
	seen := map[string]bool{}
	var dups []string
	for _, a := range acts {
		if seen[a.Name] && !slices.Contains(dups, a.Name) {
			dups = append(dups, a.Name)
		}
		seen[a.Name] = true
		e.actions[a.Name] = a
		e.order = append(e.order, a.Name)
	}
	if len(dups) > 0 {
		sort.Strings(dups)
		return fmt.Errorf("Duplicate action names within plugin: %s", pyList(dups))
	}
	return nil
}

// pyList renders strings as Python prints a list of str: ['a', 'b'].
func pyList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = "'" + s + "'"
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// guard runs f and turns a panic into an error, so one broken plugin
// cannot take the process down at load.
func guard[T any](f func() (T, error)) (v T, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return f()
}

func isNilValue(v any) bool {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice, reflect.Func:
		return rv.IsNil()
	}
	return false
}

// packageOf finds the Go module that defines p's type in the binary's
// build info (Python: the entry point's distribution); "unknown" when
// the type has no package or build info is missing.
func packageOf(p plugins.Plugin) (name, version string) {
	// A plugin run elsewhere (internal/remote) knows its own distribution.
	if pk, ok := p.(interface{ PackageInfo() (string, string) }); ok {
		return pk.PackageInfo()
	}
	t := reflect.TypeOf(p)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	pkg := t.PkgPath()
	bi, ok := debug.ReadBuildInfo()
	if pkg == "" || !ok {
		return "unknown", "unknown"
	}
	best := ""
	mods := append([]*debug.Module{&bi.Main}, bi.Deps...)
	for _, m := range mods {
		if m.Path != "" && (pkg == m.Path || strings.HasPrefix(pkg, m.Path+"/")) && len(m.Path) > len(best) {
			best, version = m.Path, m.Version
		}
	}
	if best == "" {
		return "unknown", "unknown"
	}
	if version == "" {
		version = "(devel)"
	}
	return best, version
}

// Get returns the entry for slug or a *plugins.PluginNotFoundError whose
// message is the slug.
func (r *Registry) Get(slug string) (*Entry, error) {
	e, ok := r.current.Load().entries[slug]
	if !ok {
		return nil, &plugins.PluginNotFoundError{Message: slug}
	}
	return e, nil
}

// List returns the entries in load order ([] when empty).
func (r *Registry) List() []*Entry {
	s := r.current.Load()
	out := make([]*Entry, 0, len(s.order))
	for _, slug := range s.order {
		out = append(out, s.entries[slug])
	}
	return out
}
