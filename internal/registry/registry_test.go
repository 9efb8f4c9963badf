package registry_test

// Conformance: Python's test_registry.py (plugins-spec §12, cases 92–112),
// with registrations in place of entry points, plus the Go-only parts
// (panics, concurrency, build info).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/pluginreg"
	"github.com/aweber-imbi/imbi-worker/internal/registry"
	"github.com/aweber-imbi/imbi-worker/plugins"
)

// setup is one isolated registry over regs with a captured log.
type setup struct {
	reg *registry.Registry
	log *bytes.Buffer
}

func newSetup(t *testing.T, regs ...pluginreg.Registration) *setup {
	t.Helper()
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&syncWriter{w: &buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return &setup{reg: registry.New(func() []pluginreg.Registration { return regs }, registry.WithLogger(logger)), log: &buf}
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func reg(name string, v any) pluginreg.Registration {
	return pluginreg.Registration{Name: name, Load: func() (any, error) { return v, nil }}
}

// ---- plugins of every kind ----

type manifestOf struct{ m plugins.PluginManifest }

func (p manifestOf) Manifest() plugins.PluginManifest { return p.m }

type configPlugin struct{ manifestOf }

func (configPlugin) ListKeys(context.Context, plugins.PluginContext, plugins.Credentials) ([]plugins.ConfigKey, error) {
	return nil, nil
}
func (configPlugin) GetValues(context.Context, plugins.PluginContext, plugins.Credentials, []string) ([]plugins.ConfigKeyWithValue, error) {
	return nil, nil
}
func (configPlugin) SetValue(context.Context, plugins.PluginContext, plugins.Credentials, string, plugins.ConfigValue) (plugins.ConfigKey, error) {
	return plugins.ConfigKey{}, nil
}
func (configPlugin) DeleteKey(context.Context, plugins.PluginContext, plugins.Credentials, string) error {
	return nil
}

type identityPlugin struct{ manifestOf }

func (identityPlugin) AuthorizationRequest(context.Context, plugins.PluginContext, plugins.Credentials, string, []string) (plugins.AuthorizationRequest, error) {
	return plugins.AuthorizationRequest{}, nil
}
func (identityPlugin) ExchangeCode(context.Context, plugins.PluginContext, plugins.Credentials, string, string, *string) (plugins.IdentityProfile, plugins.IdentityCredentials, error) {
	return plugins.IdentityProfile{}, plugins.IdentityCredentials{}, nil
}
func (identityPlugin) Refresh(context.Context, plugins.PluginContext, plugins.Credentials, string) (plugins.IdentityCredentials, error) {
	return plugins.IdentityCredentials{}, nil
}

type deploymentPlugin struct{ manifestOf }

func (deploymentPlugin) ListRefs(context.Context, plugins.PluginContext, plugins.Credentials, plugins.RefListKind, *string) ([]plugins.Ref, error) {
	return nil, nil
}
func (deploymentPlugin) ListCommits(context.Context, plugins.PluginContext, plugins.Credentials, string, int) ([]plugins.Commit, error) {
	return nil, nil
}
func (deploymentPlugin) ResolveCommittish(context.Context, plugins.PluginContext, plugins.Credentials, string) (plugins.Commit, error) {
	return plugins.Commit{}, nil
}
func (deploymentPlugin) Compare(context.Context, plugins.PluginContext, plugins.Credentials, string, string) (plugins.CompareResult, error) {
	return plugins.CompareResult{}, nil
}
func (deploymentPlugin) TriggerDeployment(context.Context, plugins.PluginContext, plugins.Credentials, string, map[string]string) (plugins.DeploymentRun, error) {
	return plugins.DeploymentRun{}, nil
}
func (deploymentPlugin) GetDeploymentStatus(context.Context, plugins.PluginContext, plugins.Credentials, string) (plugins.DeploymentRun, error) {
	return plugins.DeploymentRun{}, nil
}

type logsPlugin struct{ manifestOf }

func (logsPlugin) Search(context.Context, plugins.PluginContext, plugins.Credentials, plugins.LogQuery) (plugins.LogResult, error) {
	return plugins.LogResult{}, nil
}
func (logsPlugin) Schema(context.Context, plugins.PluginContext, plugins.Credentials) ([]map[string]any, error) {
	return nil, nil
}

type lifecyclePlugin struct{ manifestOf }

func (lifecyclePlugin) OnProjectArchived(context.Context, plugins.PluginContext, plugins.Credentials) (plugins.LifecycleResult, error) {
	return plugins.LifecycleResult{Status: plugins.LifecycleOK}, nil
}

type sampleWebhookConfig struct {
	Target string `json:"target"`
}

func sampleWebhookAction(context.Context, plugins.ActionInput[sampleWebhookConfig]) error { return nil }

type webhookPlugin struct {
	manifestOf
	actions func() ([]plugins.ActionDescriptor, error)
}

func (p webhookPlugin) Actions() ([]plugins.ActionDescriptor, error) { return p.actions() }

// configWebhookPlugin is a configuration plugin that also implements
// WebhookActionPlugin: its catalogue is checked all the same (§7.3 step 6).
type configWebhookPlugin struct {
	configPlugin
	acts []plugins.ActionDescriptor
}

func (p configWebhookPlugin) Actions() ([]plugins.ActionDescriptor, error) { return p.acts, nil }

func manifest(slug string, t plugins.PluginType) plugins.PluginManifest {
	return plugins.NewManifest(slug, slug, t)
}

func action(name string) plugins.ActionDescriptor {
	return plugins.MustAction(name, "Label "+name, sampleWebhookAction)
}

func webhook(slug string, acts ...plugins.ActionDescriptor) webhookPlugin {
	return webhookPlugin{manifestOf{manifest(slug, plugins.TypeWebhook)}, func() ([]plugins.ActionDescriptor, error) { return acts, nil }}
}

// Case 92.
func TestLoadPluginsEmpty(t *testing.T) {
	s := newSetup(t)
	res, err := s.reg.Load()
	require.NoError(t, err)
	require.Equal(t, registry.LoadResult{Loaded: []string{}, Errors: map[string]string{}, Skipped: []string{}}, res)
}

// Case 93 (and api_version 0 in JSON is not "unset": only Go literals
// get WithDefaults' 1).
func TestLoadPluginsUnsupportedAPIVersion(t *testing.T) {
	m := manifest("future", plugins.TypeConfiguration)
	m.APIVersion = 999
	s := newSetup(t, reg("future-ep", configPlugin{manifestOf{m}}))
	res, err := s.reg.Load()
	require.NoError(t, err)
	require.Equal(t, []string{"future-ep"}, res.Skipped)
	require.Empty(t, res.Loaded)
	require.Empty(t, res.Errors)
	require.Contains(t, s.log.String(), "unsupported api_version 999")
}

// Case 94: the Go analogue of "class without manifest" is a value that
// does not implement plugins.Plugin (or is nil).
func TestLoadPluginsMissingManifest(t *testing.T) {
	var nilPlugin *configPlugin
	s := newSetup(t, reg("no-manifest", struct{}{}), reg("nil-plugin", nilPlugin))
	res, err := s.reg.Load()
	require.NoError(t, err)
	require.Equal(t, map[string]string{
		"no-manifest": "Missing or invalid manifest attribute",
		"nil-plugin":  "Missing or invalid manifest attribute",
	}, res.Errors)
}

// Case 95.
func TestGetPluginNotFound(t *testing.T) {
	s := newSetup(t)
	_, err := s.reg.Get("nope")
	require.ErrorIs(t, err, plugins.ErrPluginNotFound)
	var nf *plugins.PluginNotFoundError
	require.ErrorAs(t, err, &nf)
	require.Equal(t, "nope", nf.Message)
	require.EqualError(t, err, "nope")
}

// Case 96.
func TestListPluginsEmpty(t *testing.T) {
	s := newSetup(t)
	require.NotNil(t, s.reg.List())
	require.Empty(t, s.reg.List())
}

// Cases 97, 98, 100, 102, 104, 106: the kind checks.
func TestLoadPluginsKindChecks(t *testing.T) {
	tests := []struct {
		name    string
		plugin  any
		wantErr string
	}{
		{"class_missing_interface", manifestOf{manifest("x", plugins.TypeConfiguration)},
			"Plugin must implement ConfigurationPlugin, LogsPlugin, IdentityPlugin, DeploymentPlugin, LifecyclePlugin, or WebhookActionPlugin"},
		{"plugin_type_mismatch", configPlugin{manifestOf{manifest("x", plugins.TypeLogs)}},
			"Class does not implement LogsPlugin for plugin_type='logs'"},
		{"identity_plugin_type_mismatch", configPlugin{manifestOf{manifest("x", plugins.TypeIdentity)}},
			"Class does not implement IdentityPlugin for plugin_type='identity'"},
		{"deployment_plugin_type_mismatch", configPlugin{manifestOf{manifest("x", plugins.TypeDeployment)}},
			"Class does not implement DeploymentPlugin for plugin_type='deployment'"},
		{"lifecycle_plugin_type_mismatch", configPlugin{manifestOf{manifest("x", plugins.TypeLifecycle)}},
			"Class does not implement LifecyclePlugin for plugin_type='lifecycle'"},
		{"webhook_plugin_type_mismatch", configPlugin{manifestOf{manifest("x", plugins.TypeWebhook)}},
			"Class does not implement WebhookActionPlugin for plugin_type='webhook'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSetup(t, reg("ep", tc.plugin))
			res, err := s.reg.Load()
			require.NoError(t, err)
			require.Equal(t, map[string]string{"ep": tc.wantErr}, res.Errors)
			require.Empty(t, res.Loaded)
		})
	}
}

// Step order: a kind mismatch is an error even when the version would skip.
func TestLoadPluginsMismatchBeatsVersionSkip(t *testing.T) {
	m := manifest("x", plugins.TypeLogs)
	m.APIVersion = 999
	s := newSetup(t, reg("ep", configPlugin{manifestOf{m}}))
	res, _ := s.reg.Load()
	require.Equal(t, map[string]string{"ep": "Class does not implement LogsPlugin for plugin_type='logs'"}, res.Errors)
	require.Empty(t, res.Skipped)
}

// Cases 99, 101, 103, 105: each kind loads and is retrievable.
func TestLoadPluginsRoundTrip(t *testing.T) {
	idm := manifest("okta", plugins.TypeIdentity)
	idm.AuthType, idm.LoginCapable = plugins.AuthOIDC, true
	tests := []struct {
		name   string
		plugin plugins.Plugin
	}{
		{"identity", identityPlugin{manifestOf{idm}}},
		{"deployment", deploymentPlugin{manifestOf{manifest("gh-deploy", plugins.TypeDeployment)}}},
		{"lifecycle", lifecyclePlugin{manifestOf{manifest("archiver", plugins.TypeLifecycle)}}},
		{"webhook", webhook("hooks", action("do_thing"))},
		{"configuration", configPlugin{manifestOf{manifest("ssm", plugins.TypeConfiguration)}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSetup(t, reg("ep-"+tc.name, tc.plugin))
			res, err := s.reg.Load()
			require.NoError(t, err)
			require.Empty(t, res.Errors)
			slug := tc.plugin.Manifest().Slug
			require.Equal(t, []string{slug}, res.Loaded)
			e, err := s.reg.Get(slug)
			require.NoError(t, err)
			require.IsType(t, tc.plugin, e.Plugin)
			require.Equal(t, tc.plugin.Manifest(), e.Manifest)
			require.Equal(t, "ep-"+tc.name, e.Name)
			require.Equal(t, tc.name == "webhook", e.IsWebhook())
			// The test binary's main module defines these types.
			require.Equal(t, "github.com/aweber-imbi/imbi-worker", e.PackageName)
			require.NotEmpty(t, e.PackageVersion)
			require.Contains(t, s.log.String(), "Loaded plugin")
		})
	}
	t.Run("identity_manifest_fields", func(t *testing.T) {
		s := newSetup(t, reg("okta", identityPlugin{manifestOf{idm}}))
		_, _ = s.reg.Load()
		e, err := s.reg.Get("okta")
		require.NoError(t, err)
		require.Equal(t, plugins.AuthOIDC, e.Manifest.AuthType)
		require.True(t, e.Manifest.LoginCapable)
	})
	t.Run("webhook_catalogue", func(t *testing.T) {
		s := newSetup(t, reg("hooks", webhook("hooks", action("b_second"), action("a_first"))))
		_, _ = s.reg.Load()
		e, _ := s.reg.Get("hooks")
		require.Equal(t, plugins.TypeWebhook, e.Manifest.PluginType)
		a, ok := e.Action("a_first")
		require.True(t, ok)
		require.Equal(t, "a_first", a.Name)
		_, ok = e.Action("missing")
		require.False(t, ok)
		require.Equal(t, []string{"b_second", "a_first"}, []string{e.Actions()[0].Name, e.Actions()[1].Name})
	})
}

// Cases 107–111: the webhook catalogue checks.
func TestLoadWebhookCatalogue(t *testing.T) {
	withActions := func(f func() ([]plugins.ActionDescriptor, error)) webhookPlugin {
		return webhookPlugin{manifestOf{manifest("hooks", plugins.TypeWebhook)}, f}
	}
	tests := []struct {
		name    string
		plugin  webhookPlugin
		wantErr string
		loaded  bool
	}{
		{"empty_catalog_warns_but_loads", webhook("hooks"), "", true},
		// Duplicates first seen in reverse order: the message sorts them.
		{"duplicate_action_names_rejected", webhook("hooks", action("zeta"), action("alpha"), action("zeta"), action("ok"), action("alpha"), action("zeta")),
			"Duplicate action names within plugin: ['alpha', 'zeta']", false},
		{"actions_raises_is_reported", withActions(func() ([]plugins.ActionDescriptor, error) { return nil, errors.New("boom") }),
			"actions() raised: boom", false},
		{"actions_panics_is_reported", withActions(func() ([]plugins.ActionDescriptor, error) { panic("kaboom") }),
			"actions() raised: panic: kaboom", false},
		// Go analogue of "returns None / a non-list": a descriptor that is
		// not one (zero value, never built by NewAction).
		{"actions_returns_non_list_rejected", withActions(func() ([]plugins.ActionDescriptor, error) {
			return []plugins.ActionDescriptor{{}}, nil
		}), "actions() must return list[ActionDescriptor]", false},
		// …and "a list holding a str": a hand-built descriptor among good ones.
		{"actions_returns_wrong_items_rejected", withActions(func() ([]plugins.ActionDescriptor, error) {
			return []plugins.ActionDescriptor{action("ok"), {Name: "do_thing", Label: "Do"}}, nil
		}), "actions() must return list[ActionDescriptor]", false},
		// NewAction's own validation surfaces as "actions() raised".
		{"bad_action_name_in_catalog", withActions(func() ([]plugins.ActionDescriptor, error) {
			d, err := plugins.NewAction("Bad-Name", "Bad", sampleWebhookAction)
			return []plugins.ActionDescriptor{d}, err
		}), "actions() raised: ActionDescriptor.name: String should match pattern '^[a-z][a-z0-9_]*$' (got \"Bad-Name\")", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSetup(t, reg("hooks-ep", tc.plugin))
			res, err := s.reg.Load()
			require.NoError(t, err)
			if tc.loaded {
				require.Equal(t, []string{"hooks"}, res.Loaded)
				require.Empty(t, res.Errors)
				require.Contains(t, s.log.String(), "level=WARN")
				require.Contains(t, s.log.String(), "Webhook plugin 'hooks-ep' exposes no actions; the plugin is inert")
				return
			}
			require.Empty(t, res.Loaded)
			require.Equal(t, map[string]string{"hooks-ep": tc.wantErr}, res.Errors)
		})
	}
}

// §7.3 step 6 applies to every plugin that implements WebhookActionPlugin,
// also when its plugin_type names another kind.
func TestLoadCatalogueOfPluginWithAnotherKind(t *testing.T) {
	tests := []struct {
		name    string
		acts    []plugins.ActionDescriptor
		wantErr string
	}{
		{"duplicates_rejected", []plugins.ActionDescriptor{action("b"), action("a"), action("b"), action("a")},
			"Duplicate action names within plugin: ['a', 'b']"},
		{"foreign_descriptor_rejected", []plugins.ActionDescriptor{{Name: "x", Label: "X"}},
			"actions() must return list[ActionDescriptor]"},
		{"valid_catalogue_loads", []plugins.ActionDescriptor{action("a")}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := configWebhookPlugin{configPlugin{manifestOf{manifest("both", plugins.TypeConfiguration)}}, tc.acts}
			s := newSetup(t, reg("both-ep", p))
			res, err := s.reg.Load()
			require.NoError(t, err)
			if tc.wantErr != "" {
				require.Equal(t, map[string]string{"both-ep": tc.wantErr}, res.Errors)
				require.Empty(t, res.Loaded)
				return
			}
			require.Empty(t, res.Errors)
			e, err := s.reg.Get("both")
			require.NoError(t, err)
			require.True(t, e.IsWebhook())
			_, ok := e.Action("a")
			require.True(t, ok)
		})
	}
}

// The kinds a value implements, in §3's order; the registry's kind check
// is built on it.
func TestKinds(t *testing.T) {
	m := manifestOf{manifest("x", plugins.TypeConfiguration)}
	tests := []struct {
		name  string
		value any
		want  []plugins.PluginType
	}{
		{"configuration", configPlugin{m}, []plugins.PluginType{plugins.TypeConfiguration}},
		{"logs", logsPlugin{m}, []plugins.PluginType{plugins.TypeLogs}},
		{"identity", identityPlugin{m}, []plugins.PluginType{plugins.TypeIdentity}},
		{"deployment", deploymentPlugin{m}, []plugins.PluginType{plugins.TypeDeployment}},
		{"lifecycle", lifecyclePlugin{m}, []plugins.PluginType{plugins.TypeLifecycle}},
		{"webhook", webhook("x"), []plugins.PluginType{plugins.TypeWebhook}},
		{"configuration_and_webhook", configWebhookPlugin{configPlugin: configPlugin{m}}, []plugins.PluginType{plugins.TypeConfiguration, plugins.TypeWebhook}},
		{"manifest_only", m, nil},
		{"not_a_plugin", struct{}{}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, registry.Kinds(tc.value))
		})
	}
}

// Case 112.
func TestLoadPluginsDuplicateSlugSkipped(t *testing.T) {
	first := configPlugin{manifestOf{manifest("dup", plugins.TypeConfiguration)}}
	second := lifecyclePlugin{manifestOf{manifest("dup", plugins.TypeLifecycle)}}
	s := newSetup(t, reg("first", first), reg("second", second))
	res, err := s.reg.Load()
	require.NoError(t, err)
	require.Equal(t, []string{"dup"}, res.Loaded)
	require.Equal(t, map[string]string{"second": "Duplicate plugin slug: dup"}, res.Errors)
	e, _ := s.reg.Get("dup")
	require.Equal(t, first, e.Plugin)
}

// §7.3 step 1: a failing or panicking loader is that registration's error.
func TestLoadErrors(t *testing.T) {
	s := newSetup(t,
		pluginreg.Registration{Name: "fails", Load: func() (any, error) { return nil, errors.New("no such module") }},
		pluginreg.Registration{Name: "panics", Load: func() (any, error) { panic("init exploded") }},
		reg("bad-manifest", configPlugin{manifestOf{plugins.PluginManifest{Slug: "x", Name: "x", PluginType: "analysis"}}}),
		reg("good", configPlugin{manifestOf{manifest("good", plugins.TypeConfiguration)}}),
	)
	res, err := s.reg.Load()
	require.NoError(t, err)
	require.Equal(t, []string{"good"}, res.Loaded)
	require.Equal(t, "no such module", res.Errors["fails"])
	require.Equal(t, "panic: init exploded", res.Errors["panics"])
	require.Equal(t, "PluginManifest.plugin_type: Input should be 'configuration', 'logs', 'identity', 'deployment', 'lifecycle' or 'webhook'", res.Errors["bad-manifest"])
}

// Go literals get Python's defaults (auth_type, api_version).
func TestLoadAppliesManifestDefaults(t *testing.T) {
	lit := plugins.PluginManifest{Slug: "lit", Name: "Literal", PluginType: plugins.TypeConfiguration}
	s := newSetup(t, reg("lit", configPlugin{manifestOf{lit}}))
	res, err := s.reg.Load()
	require.NoError(t, err)
	require.Equal(t, []string{"lit"}, res.Loaded)
	e, _ := s.reg.Get("lit")
	require.Equal(t, 1, e.Manifest.APIVersion)
	require.Equal(t, plugins.AuthAPIToken, e.Manifest.AuthType)
}

// §7.4–7.5: a collision fails the load and keeps the previous registry;
// a clean load replaces it wholesale.
func TestCollisionKeepsPreviousRegistry(t *testing.T) {
	withLabel := func(slug, ref string) configPlugin {
		m := manifest(slug, plugins.TypeConfiguration)
		m.VertexLabels = []plugins.PluginVertexLabel{{Name: "Account", ModelRef: ref}}
		return configPlugin{manifestOf{m}}
	}
	var regs []pluginreg.Registration
	r := registry.New(func() []pluginreg.Registration { return regs })
	regs = []pluginreg.Registration{reg("a", withLabel("a", "a:Account"))}
	_, err := r.Load()
	require.NoError(t, err)

	regs = append(regs, reg("b", withLabel("b", "b:Account")))
	res, err := r.Reload()
	require.ErrorIs(t, err, plugins.ErrSchemaCollision)
	require.EqualError(t, err, "Plugin 'b' declares vlabel 'Account' with a shape that differs from plugin 'a'")
	require.Equal(t, []string{"a", "b"}, res.Loaded)
	require.Len(t, r.List(), 1, "previous registry kept")
	lastRes, lastErr := r.LastLoad()
	require.Equal(t, res, lastRes)
	require.Equal(t, err, lastErr)

	regs = []pluginreg.Registration{reg("c", configPlugin{manifestOf{manifest("c", plugins.TypeConfiguration)}})}
	_, err = r.Reload()
	require.NoError(t, err)
	_, err = r.Get("a")
	require.ErrorIs(t, err, plugins.ErrPluginNotFound, "plugins that disappeared are removed")
	require.Len(t, r.List(), 1)
}

// Reads during reloads are safe (run with -race) and always see a whole
// snapshot: either every plugin of generation A or every one of B.
func TestConcurrentReadsDuringReload(t *testing.T) {
	gen := func(prefix string) []pluginreg.Registration {
		var out []pluginreg.Registration
		for i := range 5 {
			slug := fmt.Sprintf("%s-%d", prefix, i)
			out = append(out, reg(slug, webhook(slug, action("act"))))
		}
		return out
	}
	a, b := gen("a"), gen("b")
	var mu sync.Mutex
	flip := false
	r := registry.New(func() []pluginreg.Registration {
		mu.Lock()
		defer mu.Unlock()
		flip = !flip
		if flip {
			return a
		}
		return b
	})
	_, err := r.Load()
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				list := r.List()
				if len(list) != 5 {
					errs <- fmt.Errorf("saw %d entries", len(list))
					return
				}
				prefix := list[0].Manifest.Slug[:1]
				for _, e := range list {
					if e.Manifest.Slug[:1] != prefix {
						errs <- fmt.Errorf("mixed snapshot: %s and %s", prefix, e.Manifest.Slug)
						return
					}
					if _, err := r.Get(e.Manifest.Slug); err != nil && !errors.Is(err, plugins.ErrPluginNotFound) {
						errs <- err
						return
					}
					if _, ok := e.Action("act"); !ok {
						errs <- fmt.Errorf("entry %s lost its action", e.Manifest.Slug)
						return
					}
				}
				runtime.Gosched() // let the reloader run on a small machine
			}
		})
	}
	for range 100 {
		_, err := r.Reload()
		require.NoError(t, err)
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

func TestDefaultRegistryIsProcessWide(t *testing.T) {
	require.Same(t, registry.Default(), registry.Default())
}
