package plugins

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

type cacheTestConfig struct {
	Label string `json:"label" jsonschema:"minLength=1"`
	Count int    `json:"count,omitempty" jsonschema:"minimum=0"`
}

// validatedConfig's Validate must run on every decode, cached verdict or
// not.
type validatedConfig struct {
	Label string `json:"label"`
}

var errForbidden = errors.New("label forbidden")

func (c *validatedConfig) Validate() error {
	if c.Label == "forbidden" {
		return errForbidden
	}
	return nil
}

func cacheTestAction(t *testing.T) (ActionDescriptor, *typedAction[cacheTestConfig]) {
	t.Helper()
	d, err := NewAction("noop", "No-op", func(context.Context, ActionInput[cacheTestConfig]) error { return nil })
	require.NoError(t, err)
	return d, d.impl.(*typedAction[cacheTestConfig])
}

func TestDecodeConfigCacheRejectsInvalidEveryTime(t *testing.T) {
	d, impl := cacheTestAction(t)
	for _, raw := range []string{`{"label":""}`, `{"count":1}`, `{"label":"a","count":-1}`, `{"label":1}`, `{`, `"{\"label\":\"\"}"`} {
		for i := range 3 {
			_, err := d.DecodeConfig(json.RawMessage(raw))
			var ce *ConfigError
			require.ErrorAs(t, err, &ce, "%s, call %d", raw, i)
		}
	}
	require.Zero(t, impl.valid.len(), "rejected configs must not be cached")

	// A valid config is cached after its first validation, and each call
	// still returns its own freshly decoded value.
	for i := range 3 {
		got, err := d.DecodeConfig(json.RawMessage(`{"label":"x","count":2}`))
		require.NoError(t, err)
		require.Equal(t, cacheTestConfig{Label: "x", Count: 2}, got, "call %d", i)
	}
	require.Equal(t, 1, impl.valid.len())

	// A near-identical invalid config is not matched by the cached one.
	_, err := d.DecodeConfig(json.RawMessage(`{"label":"","count":2}`))
	require.Error(t, err)
}

func TestDecodeConfigCacheIsBounded(t *testing.T) {
	d, impl := cacheTestAction(t)
	for i := range 3 * maxCachedConfigs {
		_, err := d.DecodeConfig(json.RawMessage(`{"label":"l` + strconv.Itoa(i) + `"}`))
		require.NoError(t, err)
		require.LessOrEqual(t, impl.valid.len(), maxCachedConfigs)
	}
	require.Positive(t, impl.valid.len())

	// Oversized configs are validated every time, never stored.
	big := `{"label":"` + string(bytesOf('a', maxCachedConfig)) + `"}`
	before := impl.valid.len()
	_, err := d.DecodeConfig(json.RawMessage(big))
	require.NoError(t, err)
	require.Equal(t, before, impl.valid.len())
}

func TestDecodeConfigCacheStillRunsValidate(t *testing.T) {
	d, err := NewAction("v", "V", func(context.Context, ActionInput[validatedConfig]) error { return nil })
	require.NoError(t, err)
	// Schema-valid both times; Validate must reject it both times.
	for range 2 {
		_, err := d.DecodeConfig(json.RawMessage(`{"label":"forbidden"}`))
		require.ErrorIs(t, err, errForbidden)
	}
}

func bytesOf(b byte, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}

// FuzzDecodeConfigCache: the verdict cache never changes an answer.
// Every input is decoded by a descriptor whose cache has seen it (warm,
// shared across inputs) and by a fresh one (cold); accept/reject and the
// decoded value must agree, and a second warm call must agree too.
func FuzzDecodeConfigCache(f *testing.F) {
	for _, seed := range []string{
		`{"label":"a"}`, `{"label":""}`, `{"label":"a","count":-1}`, `"{\"label\":\"a\"}"`, `null`, ``,
		`{"label":"a","count":1.0}`, `{"label":"a"} `, ` {"label":"a"}`, `{"label":"a","label":""}`, `[]`,
	} {
		f.Add([]byte(seed))
	}
	warm, _ := NewAction("warm", "Warm", func(context.Context, ActionInput[cacheTestConfig]) error { return nil })
	f.Fuzz(func(t *testing.T, raw []byte) {
		cold, err := NewAction("cold", "Cold", func(context.Context, ActionInput[cacheTestConfig]) error { return nil })
		require.NoError(t, err)
		want, wantErr := cold.DecodeConfig(json.RawMessage(raw))
		for i := range 2 {
			got, gotErr := warm.DecodeConfig(json.RawMessage(raw))
			require.Equal(t, wantErr == nil, gotErr == nil, "call %d on %q: cold %v, warm %v", i, raw, wantErr, gotErr)
			require.Equal(t, want, got, "call %d on %q", i, raw)
		}
	})
}

// BenchmarkDecodeConfig: a rule's config seen before (cached verdict)
// against one validated every time (cache emptied per call).
func BenchmarkDecodeConfig(b *testing.B) {
	d, err := NewAction("noop", "No-op", func(context.Context, ActionInput[cacheTestConfig]) error { return nil })
	if err != nil {
		b.Fatal(err)
	}
	impl := d.impl.(*typedAction[cacheTestConfig])
	raw := json.RawMessage(`{"label":"bench","count":3}`)
	for _, tc := range []struct {
		name  string
		reset bool
	}{{"cached", false}, {"validated", true}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if tc.reset {
					impl.valid = validConfigs{}
				}
				if _, err := d.DecodeConfig(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
