package creds

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/aweber-imbi/imbi-worker/plugins"
)

// Resolver defaults.
const (
	// DefaultCacheTTL is how long loaded credentials are reused. A burst of
	// events for one plugin then costs one Neo4j query per TTL; an operator
	// edit takes effect within the TTL.
	DefaultCacheTTL = 60 * time.Second
	// DefaultCacheEntries bounds the cache; the entry closest to expiry is
	// dropped first when it is full.
	DefaultCacheEntries = 1024
)

// WithCacheTTL sets the Resolver's cache TTL; 0 turns the cache off.
func WithCacheTTL(ttl time.Duration) Option { return func(o *options) { o.ttl = &ttl } }

// WithCacheEntries bounds the Resolver's cache (default DefaultCacheEntries).
func WithCacheEntries(n int) Option { return func(o *options) { o.max = n } }

// loader is what the Resolver needs from the store (Store implements it).
type loader interface {
	ServicePluginCredentials(ctx context.Context, service, pluginID string, m plugins.PluginManifest) (plugins.Credentials, error)
	FindPluginID(ctx context.Context, serviceSlug, pluginSlug string) (string, bool, error)
}

// Resolver is the worker's credential source: it finds the Plugin
// node, loads its credentials through the store, caches successes per
// plugin for the TTL (failures are never cached, so a fix takes effect at
// the next message) and lets concurrent misses for one plugin share a
// single load.
type Resolver struct {
	load    loader
	ping    func(context.Context) error
	ttl     time.Duration
	max     int
	now     func() time.Time
	request metric.Int64Counter

	mu       sync.Mutex
	entries  map[string]cacheEntry
	inflight map[string]*call
}

type cacheEntry struct {
	creds   plugins.Credentials
	expires time.Time
}

// call is one in-flight load that later callers for the same key wait on.
type call struct {
	done  chan struct{}
	creds plugins.Credentials
	err   error
}

// NewResolver wraps store with the cache. Options: WithCacheTTL,
// WithCacheEntries, WithMeterProvider.
func NewResolver(store *Store, opts ...Option) (*Resolver, error) {
	r, err := newResolver(store, opts...)
	if err != nil {
		return nil, err
	}
	r.ping = store.Ping
	return r, nil
}

// Ping checks that the store's Neo4j answers (readiness).
func (r *Resolver) Ping(ctx context.Context) error {
	if r.ping == nil {
		return nil
	}
	return r.ping(ctx)
}

func newResolver(l loader, opts ...Option) (*Resolver, error) {
	o := buildOptions(opts)
	ttl := DefaultCacheTTL
	if o.ttl != nil {
		ttl = *o.ttl
	}
	if ttl < 0 {
		return nil, fmt.Errorf("credentials cache TTL must not be negative, got %s", ttl)
	}
	if o.max <= 0 {
		o.max = DefaultCacheEntries
	}
	counter, err := o.meters.Meter(meterName).Int64Counter("imbi_worker.credentials.cache.requests",
		metric.WithDescription("Credential lookups by cache result (hit or miss)"))
	if err != nil {
		return nil, fmt.Errorf("credentials cache counter: %w", err)
	}
	return &Resolver{
		load: l, ttl: ttl, max: o.max, now: time.Now, request: counter,
		entries: map[string]cacheEntry{}, inflight: map[string]*call{},
	}, nil
}

var (
	attrHit  = metric.WithAttributes(attribute.String("result", "hit"))
	attrMiss = metric.WithAttributes(attribute.String("result", "miss"))
)

// Request names the plugin whose credentials are wanted.
type Request struct {
	// PluginID is the Plugin node id from the envelope (may be empty).
	PluginID string
	// ThirdPartyService is event.third_party_service, used with the
	// manifest's slug to find the Plugin node when PluginID is empty.
	ThirdPartyService string
	// Manifest is the registered plugin's manifest (slug, auth_type,
	// credential fields).
	Manifest plugins.PluginManifest
}

// Credentials is the worker's credential source (the interface
// internal/dispatch declares): Resolve with the request spelled out.
func (r *Resolver) Credentials(ctx context.Context, m plugins.PluginManifest, pluginID, thirdPartyService string) (plugins.Credentials, error) {
	return r.Resolve(ctx, Request{PluginID: pluginID, ThirdPartyService: thirdPartyService, Manifest: m})
}

// Resolve loads the credentials req names, from the cache when fresh. Errors:
// *plugins.PluginCredentialsMissing (permanent) and
// *plugins.PluginUnavailableError (Neo4j unreachable; retry the message).
// The returned map is the caller's own copy.
func (r *Resolver) Resolve(ctx context.Context, req Request) (plugins.Credentials, error) {
	key := cacheKey(req)
	// The cache and the in-flight loads are checked in one critical
	// section: checked apart, a caller could miss the cache just before a
	// load stored its result and then, finding no load in flight, query
	// Neo4j a second time.
	r.mu.Lock()
	if r.ttl > 0 {
		if e, ok := r.entries[key]; ok && r.now().Before(e.expires) {
			r.mu.Unlock()
			r.request.Add(ctx, 1, attrHit)
			return maps.Clone(e.creds), nil
		}
	}
	if c, ok := r.inflight[key]; ok {
		r.mu.Unlock()
		r.request.Add(ctx, 1, attrMiss)
		select {
		case <-c.done:
			if c.err != nil {
				return nil, c.err
			}
			return maps.Clone(c.creds), nil
		case <-ctx.Done():
			return nil, unavailable(req, ctx.Err())
		}
	}
	c := &call{done: make(chan struct{})}
	r.inflight[key] = c
	r.mu.Unlock()
	r.request.Add(ctx, 1, attrMiss)

	// The load runs under the first caller's context; waiters give up on
	// their own context without cancelling it.
	c.creds, c.err = r.resolve(ctx, req)

	r.mu.Lock()
	delete(r.inflight, key)
	if c.err == nil && r.ttl > 0 {
		r.store(key, c.creds)
	}
	r.mu.Unlock()
	close(c.done)
	if c.err != nil {
		return nil, c.err
	}
	return maps.Clone(c.creds), nil
}

// store caches creds; r.mu is held. When full, expired entries go first,
// then the one that expires soonest (the oldest, as the TTL is fixed).
func (r *Resolver) store(key string, creds plugins.Credentials) {
	now := r.now()
	if _, ok := r.entries[key]; !ok && len(r.entries) >= r.max {
		var oldest string
		var oldestExp time.Time
		for k, e := range r.entries {
			if !now.Before(e.expires) {
				delete(r.entries, k)
				continue
			}
			if oldest == "" || e.expires.Before(oldestExp) {
				oldest, oldestExp = k, e.expires
			}
		}
		if len(r.entries) >= r.max {
			delete(r.entries, oldest)
		}
	}
	r.entries[key] = cacheEntry{creds: creds, expires: now.Add(r.ttl)}
}

// Invalidate drops every cached entry (e.g. after `creds set`).
func (r *Resolver) Invalidate() {
	r.mu.Lock()
	clear(r.entries)
	r.mu.Unlock()
}

// cacheKey: the service is part of an id's key too, since the owner check
// depends on it (a success for one service must not answer another's).
func cacheKey(req Request) string {
	if req.PluginID != "" {
		return "id\x00" + req.PluginID + "\x00" + req.Manifest.Slug + "\x00" + req.ThirdPartyService
	}
	return "svc\x00" + req.ThirdPartyService + "\x00" + req.Manifest.Slug
}

func (r *Resolver) resolve(ctx context.Context, req Request) (plugins.Credentials, error) {
	id := req.PluginID
	if id == "" {
		found, ok, err := r.load.FindPluginID(ctx, req.ThirdPartyService, req.Manifest.Slug)
		var ambiguous *AmbiguousPluginError
		switch {
		case errors.As(err, &ambiguous):
			return nil, &plugins.PluginCredentialsMissing{Message: ambiguous.Error(), Err: err}
		case err != nil:
			return nil, unavailable(req, err)
		case !ok:
			return nil, &plugins.PluginCredentialsMissing{Message: fmt.Sprintf(
				"Plugin '%s' is not attached to third-party service '%s'", req.Manifest.Slug, req.ThirdPartyService)}
		}
		id = found
	}
	creds, err := r.load.ServicePluginCredentials(ctx, req.ThirdPartyService, id, req.Manifest)
	var storeErr *StoreError
	if errors.As(err, &storeErr) {
		return nil, unavailable(req, err)
	}
	return creds, err
}

// unavailable reports a Neo4j failure as retryable at message level. The
// cause's text is Neo4j's (addresses, codes), never a credential.
func unavailable(req Request, err error) error {
	return &plugins.PluginUnavailableError{
		Message: fmt.Sprintf("credentials for plugin '%s' unavailable: %v", req.Manifest.Slug, err),
		Err:     err,
	}
}
