package creds

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/aweber-imbi/imbi-worker/plugins"
)

// cacheRequests reads imbi_worker.credentials.cache.requests by result.
func cacheRequests(t *testing.T, reader *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "imbi_worker.credentials.cache.requests" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				r, _ := dp.Attributes.Value("result")
				out[r.AsString()] += dp.Value
			}
		}
	}
	return out
}

func newResolverEnv(t *testing.T, opts ...Option) (*env, *Resolver, *sdkmetric.ManualReader) {
	t.Helper()
	e := newEnv(t, nil, nil)
	reader := sdkmetric.NewManualReader()
	opts = append([]Option{WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))}, opts...)
	r, err := NewResolver(e.store, opts...)
	require.NoError(t, err)
	return e, r, reader
}

// A burst of 1,000 messages for one plugin costs one Neo4j query while the
// TTL holds, concurrent misses included (single flight).
func TestResolverBurstCostsOneQuery(t *testing.T) {
	t.Parallel()
	e, r, reader := newResolverEnv(t)
	id := newID(t)
	e.plugin(id, e.encrypted(`{"token": "v"}`))
	req := Request{PluginID: id, Manifest: manifest(plugins.AuthAPIToken, "token")}

	var wg sync.WaitGroup
	var failures atomic.Int64
	for range 50 { // concurrent cold start
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := r.Resolve(context.Background(), req)
			if err != nil || got["token"] != "v" {
				failures.Add(1)
			}
		}()
	}
	wg.Wait()
	for range 950 {
		got, err := r.Resolve(context.Background(), req)
		require.NoError(t, err)
		require.Equal(t, "v", got["token"])
	}
	require.Zero(t, failures.Load())
	require.EqualValues(t, 1, e.queries("read_configuration"), "1,000 lookups, one query")
	counts := cacheRequests(t, reader)
	require.EqualValues(t, 1000, counts["hit"]+counts["miss"])
	require.GreaterOrEqual(t, counts["hit"], int64(950))
}

func TestResolverTTLExpiryAndFailuresNotCached(t *testing.T) {
	t.Parallel()
	e, r, _ := newResolverEnv(t, WithCacheTTL(time.Minute))
	now := time.Now()
	var mu sync.Mutex
	r.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	ctx := context.Background()

	id := newID(t)
	e.plugin(id, nil)
	req := Request{PluginID: id, Manifest: manifest(plugins.AuthAPIToken, "token")}
	// Missing credentials: permanent, and not cached — the operator's fix
	// is seen by the next message.
	for range 2 {
		_, err := r.Resolve(ctx, req)
		requireMissing(t, err, missingToken)
	}
	require.EqualValues(t, 2, e.queries("read_configuration"))

	_, err := e.store.PatchConfiguration(ctx, id, []Update{{"token", "first"}})
	require.NoError(t, err)
	got, err := r.Resolve(ctx, req)
	require.NoError(t, err)
	require.Equal(t, "first", got["token"])

	// Changed in Neo4j: still the cached value inside the TTL…
	_, err = e.store.PatchConfiguration(ctx, id, []Update{{"token", "second"}})
	require.NoError(t, err)
	advance(59 * time.Second)
	got, err = r.Resolve(ctx, req)
	require.NoError(t, err)
	require.Equal(t, "first", got["token"])
	// …and the new one after it.
	advance(2 * time.Second)
	got, err = r.Resolve(ctx, req)
	require.NoError(t, err)
	require.Equal(t, "second", got["token"])

	// The caller owns its copy.
	got["token"] = "mutated"
	again, err := r.Resolve(ctx, req)
	require.NoError(t, err)
	require.Equal(t, "second", again["token"])

	r.Invalidate()
	_, err = r.Resolve(ctx, req)
	require.NoError(t, err)
}

func TestResolverTTLZeroDisablesCache(t *testing.T) {
	t.Parallel()
	e, r, reader := newResolverEnv(t, WithCacheTTL(0))
	id := newID(t)
	e.plugin(id, e.encrypted(`{"token": "v"}`))
	req := Request{PluginID: id, Manifest: manifest(plugins.AuthAPIToken, "token")}
	for range 3 {
		_, err := r.Resolve(context.Background(), req)
		require.NoError(t, err)
	}
	require.EqualValues(t, 3, e.queries("read_configuration"))
	require.EqualValues(t, 3, cacheRequests(t, reader)["miss"])

	_, err := NewResolver(e.store, WithCacheTTL(-time.Second))
	require.Error(t, err)
}

// Without plugin.id the Plugin is found by (service slug, plugin slug); the
// lookup is cached with the credentials.
func TestResolverBySlugs(t *testing.T) {
	t.Parallel()
	e, r, _ := newResolverEnv(t)
	svc, id := newID(t), newID(t)
	e.exec(`CREATE (:ThirdPartyService {slug: $svc})-[:HAS_PLUGIN]->(p:Plugin {id: $id, plugin_slug: 'test-plugin'})`,
		map[string]any{"svc": svc, "id": id})
	e.app(id, "cid", e.encrypted("secret"))
	req := Request{ThirdPartyService: svc, Manifest: manifest(plugins.AuthOAuth2)}
	for range 3 {
		got, err := r.Resolve(context.Background(), req)
		require.NoError(t, err)
		require.Equal(t, plugins.Credentials{"client_id": "cid", "client_secret": "secret"}, got)
	}
	require.EqualValues(t, 1, e.queries("find_plugin"))
	require.EqualValues(t, 1, e.queries("read_application"))

	_, err := r.Resolve(context.Background(), Request{ThirdPartyService: "no-such-" + svc, Manifest: manifest(plugins.AuthOAuth2)})
	requireMissing(t, err, "Plugin 'test-plugin' is not attached to third-party service 'no-such-"+svc+"'")
}

func TestResolverBoundedCache(t *testing.T) {
	t.Parallel()
	e, r, _ := newResolverEnv(t, WithCacheEntries(2))
	var reqs []Request
	for range 3 {
		id := newID(t)
		e.plugin(id, e.encrypted(`{"token": "v"}`))
		reqs = append(reqs, Request{PluginID: id, Manifest: manifest(plugins.AuthAPIToken, "token")})
	}
	for _, req := range reqs {
		_, err := r.Resolve(context.Background(), req)
		require.NoError(t, err)
		time.Sleep(time.Millisecond) // distinct expiry times
	}
	r.mu.Lock()
	n := len(r.entries)
	_, firstKept := r.entries[cacheKey(reqs[0])]
	r.mu.Unlock()
	require.Equal(t, 2, n)
	require.False(t, firstKept, "the oldest entry went first")
}

// BenchmarkResolverCachedLookup: the cost of a cache hit.
func BenchmarkResolverCachedLookup(b *testing.B) {
	e := newEnv(b, nil, nil)
	r, err := NewResolver(e.store)
	require.NoError(b, err)
	id := newID(b)
	e.plugin(id, e.encrypted(`{"token": "v", "other": "w"}`))
	req := Request{PluginID: id, Manifest: manifest(plugins.AuthAPIToken, "token")}
	_, err = r.Resolve(context.Background(), req)
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Resolve(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNeo4jLookupsPer1000Messages reports how many Neo4j queries 1,000
// credential lookups for one plugin cost with the default TTL (target: 1).
func BenchmarkNeo4jLookupsPer1000Messages(b *testing.B) {
	e := newEnv(b, nil, nil)
	id := newID(b)
	e.plugin(id, e.encrypted(`{"token": "v"}`))
	req := Request{PluginID: id, Manifest: manifest(plugins.AuthAPIToken, "token")}
	var queries uint64
	for b.Loop() {
		r, err := NewResolver(e.store)
		require.NoError(b, err)
		before := e.queries("read_configuration")
		for range 1000 {
			if _, err := r.Resolve(context.Background(), req); err != nil {
				b.Fatal(err)
			}
		}
		queries += e.queries("read_configuration") - before
	}
	b.ReportMetric(float64(queries)/float64(b.N), "neo4j-queries/1000msgs")
}

// BenchmarkUncachedLookup: one real Neo4j round trip plus decrypt (TTL 0).
func BenchmarkUncachedLookup(b *testing.B) {
	e := newEnv(b, nil, nil)
	r, err := NewResolver(e.store, WithCacheTTL(0))
	require.NoError(b, err)
	id := newID(b)
	e.plugin(id, e.encrypted(`{"token": "v"}`))
	req := Request{PluginID: id, Manifest: manifest(plugins.AuthAPIToken, "token")}
	for b.Loop() {
		if _, err := r.Resolve(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}
