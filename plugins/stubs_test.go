package plugins_test

import (
	"context"

	"github.com/aweber-imbi/imbi-worker/plugins"
)

// Minimal plugins of each remaining kind, shared by the tests.

type stubLogs struct{}

func (stubLogs) Manifest() plugins.PluginManifest {
	return plugins.NewManifest("logs", "Logs", plugins.TypeLogs)
}
func (stubLogs) Search(context.Context, plugins.PluginContext, plugins.Credentials, plugins.LogQuery) (plugins.LogResult, error) {
	return plugins.LogResult{}, nil
}
func (stubLogs) Schema(context.Context, plugins.PluginContext, plugins.Credentials) ([]map[string]any, error) {
	return nil, nil
}

type histLogs struct {
	stubLogs
	got int
}

func (h *histLogs) Histogram(_ context.Context, _ plugins.PluginContext, _ plugins.Credentials, _ plugins.LogQuery, n int) ([]plugins.LogHistogramBucket, error) {
	h.got = n
	return nil, nil
}

type stubIdentity struct{}

func (stubIdentity) Manifest() plugins.PluginManifest {
	m := plugins.NewManifest("idp", "IdP", plugins.TypeIdentity)
	m.AuthType, m.LoginCapable = plugins.AuthOIDC, true
	return m
}
func (stubIdentity) AuthorizationRequest(context.Context, plugins.PluginContext, plugins.Credentials, string, []string) (plugins.AuthorizationRequest, error) {
	return plugins.AuthorizationRequest{}, nil
}
func (stubIdentity) ExchangeCode(context.Context, plugins.PluginContext, plugins.Credentials, string, string, *string) (plugins.IdentityProfile, plugins.IdentityCredentials, error) {
	return plugins.IdentityProfile{}, plugins.IdentityCredentials{}, nil
}
func (stubIdentity) Refresh(context.Context, plugins.PluginContext, plugins.Credentials, string) (plugins.IdentityCredentials, error) {
	return plugins.IdentityCredentials{}, nil
}

type stubConfig struct{}

func (stubConfig) Manifest() plugins.PluginManifest {
	return plugins.NewManifest("cfg", "Config", plugins.TypeConfiguration)
}
func (stubConfig) ListKeys(context.Context, plugins.PluginContext, plugins.Credentials) ([]plugins.ConfigKey, error) {
	return nil, nil
}
func (stubConfig) GetValues(context.Context, plugins.PluginContext, plugins.Credentials, []string) ([]plugins.ConfigKeyWithValue, error) {
	return nil, nil
}
func (stubConfig) SetValue(context.Context, plugins.PluginContext, plugins.Credentials, string, plugins.ConfigValue) (plugins.ConfigKey, error) {
	return plugins.ConfigKey{}, nil
}
func (stubConfig) DeleteKey(context.Context, plugins.PluginContext, plugins.Credentials, string) error {
	return nil
}
