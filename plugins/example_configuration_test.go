package plugins_test

import (
	"context"
	"fmt"
	"sort"

	"github.com/aweber-imbi/imbi-worker/plugins"
)

// MemoryConfig is a configuration plugin (plugin_type "configuration"): a
// typed key/value store scoped to a project. A plugin keeps no per-call
// state in its value; this one's map stands in for the upstream store.
type MemoryConfig struct {
	store map[string]plugins.ConfigValue
}

func (MemoryConfig) Manifest() plugins.PluginManifest {
	m := plugins.NewManifest("memory-config", "Memory", plugins.TypeConfiguration)
	m.DataTypes = []plugins.DataType{{Name: "string", Label: "String"}}
	return m
}

func (c MemoryConfig) ListKeys(_ context.Context, pctx plugins.PluginContext, _ plugins.Credentials) ([]plugins.ConfigKey, error) {
	keys := []plugins.ConfigKey{}
	for k, v := range c.store {
		keys = append(keys, plugins.ConfigKey{Key: k, DataType: v.DataType, Secret: v.Secret})
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].Key < keys[j].Key })
	return keys, nil
}

func (c MemoryConfig) GetValues(_ context.Context, _ plugins.PluginContext, _ plugins.Credentials, keys []string) ([]plugins.ConfigKeyWithValue, error) {
	out := []plugins.ConfigKeyWithValue{}
	for _, k := range keys {
		if v, ok := c.store[k]; ok { // missing keys are omitted, not errors
			out = append(out, plugins.ConfigKeyWithValue{Key: k, DataType: v.DataType, Secret: v.Secret, Value: v.Value})
		}
	}
	return out, nil
}

func (c MemoryConfig) SetValue(_ context.Context, _ plugins.PluginContext, _ plugins.Credentials, key string, v plugins.ConfigValue) (plugins.ConfigKey, error) {
	c.store[key] = v
	return plugins.ConfigKey{Key: key, DataType: v.DataType, Secret: v.Secret}, nil
}

func (c MemoryConfig) DeleteKey(_ context.Context, _ plugins.PluginContext, _ plugins.Credentials, key string) error {
	delete(c.store, key) // deleting an absent key is not an error
	return nil
}

// A configuration plugin, used through the interface as a host does.
func ExampleConfigurationPlugin() {
	var p plugins.ConfigurationPlugin = MemoryConfig{store: map[string]plugins.ConfigValue{}}
	ctx, pctx := context.Background(), plugins.PluginContext{ProjectID: "p1", ProjectSlug: "api", OrgSlug: "acme"}
	_, _ = p.SetValue(ctx, pctx, nil, "LOG_LEVEL", plugins.ConfigValue{DataType: "string", Value: "debug"})
	_, _ = p.SetValue(ctx, pctx, nil, "DB_PASSWORD", plugins.ConfigValue{DataType: "string", Value: "hunter2", Secret: true})
	keys, _ := p.ListKeys(ctx, pctx, nil)
	for _, k := range keys {
		fmt.Println(k.Key, k.Secret)
	}
	vals, _ := p.GetValues(ctx, pctx, nil, []string{"LOG_LEVEL", "MISSING"})
	fmt.Println(len(vals), vals[0].Value)
	// Output:
	// DB_PASSWORD true
	// LOG_LEVEL false
	// 1 debug
}
