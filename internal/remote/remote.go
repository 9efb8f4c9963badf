// Package remote is the worker's side of remote actions (wire contract
// §D): it loads the catalog of a Python plugin host over NATS
// request/reply, registers each remote action in the registry as a
// webhook plugin action (so unknown_handler, invalid_config and
// `imbi-worker actions` work as for Go actions) and runs it by sending a
// request under the action's deadline. Timeouts, retries, dead letters and
// idempotency stay with the worker.
package remote

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/aweber-imbi/imbi-worker/internal/dispatch"
	"github.com/aweber-imbi/imbi-worker/internal/pluginreg"
	"github.com/aweber-imbi/imbi-worker/internal/registry"
	"github.com/aweber-imbi/imbi-worker/plugins"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// Mode is --remote-plugins.
type Mode string

const (
	// ModeAuto (default) uses remote actions whenever a host answers;
	// until one does, an unknown handler is unknown_handler as without hosts.
	ModeAuto Mode = "auto"
	// ModeOn expects a host: until a catalog has been loaded, a handler the
	// registry does not know is retried as unavailable instead of being
	// dead-lettered unknown_handler.
	ModeOn Mode = "on"
	// ModeOff never asks for a catalog.
	ModeOff Mode = "off"
)

// ParseMode validates a --remote-plugins value.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case ModeAuto, ModeOn, ModeOff:
		return m, nil
	}
	return "", fmt.Errorf("--remote-plugins %q: want auto, on or off", s)
}

// Defaults.
const (
	DefaultRefresh        = 30 * time.Second
	DefaultCatalogTimeout = 2 * time.Second
	// MaxCatalogBytes bounds a catalog reply (the server's max payload
	// bounds it too).
	MaxCatalogBytes = 8 << 20
	// MaxCatalogEntries bounds the actions one catalog may register.
	MaxCatalogEntries = 4096
	// replyMessageMax bounds an error message taken from a reply.
	replyMessageMax = wire.DLQErrorMaxBytes
)

// Encrypter encrypts the credentials sent to a host (creds.Keyring: the
// worker's current IMBI_AUTH_ENCRYPTION_KEY).
type Encrypter interface {
	Encrypt(plaintext string) (string, error)
}

// Config configures a Source.
type Config struct {
	Mode Mode
	// Refresh is how often the catalog is reloaded besides announces.
	Refresh time.Duration
	// TimeoutCap caps every remote action's deadline (0: no cap).
	TimeoutCap time.Duration
	// CatalogTimeout bounds one catalog request.
	CatalogTimeout time.Duration
	// Keys encrypts credentials (nil: actions of plugins with credentials
	// fail credentials_missing).
	Keys   Encrypter
	Logger *slog.Logger
}

// CatalogEntry is one action of a host's catalog reply.
type CatalogEntry struct {
	Handler        string          `json:"handler"`
	Label          string          `json:"label"`
	Description    *string         `json:"description"`
	ConfigSchema   json.RawMessage `json:"config_schema"`
	Manifest       json.RawMessage `json:"manifest"`
	TimeoutSeconds *float64        `json:"timeout_seconds"`
	// Package, Version and Host are the host's additions: the plugin's
	// Python distribution and the answering host's service id.
	Package string `json:"package,omitempty"`
	Version string `json:"version,omitempty"`
	Host    string `json:"host,omitempty"`
}

// RunRequest is the body of a run request.
type RunRequest struct {
	ActionID    string          `json:"action_id"`
	Attempt     int             `json:"attempt"`
	Deadline    string          `json:"deadline"`
	Data        json.RawMessage `json:"data"`
	Credentials string          `json:"credentials,omitempty"`
}

// RunReply is the body of a run reply.
type RunReply struct {
	Status  string   `json:"status"`
	Class   string   `json:"class,omitempty"`
	Message string   `json:"message,omitempty"`
	RetryAt *float64 `json:"retry_at,omitempty"`
}

// Source holds the current remote catalog.
type Source struct {
	cfg Config
	log *slog.Logger

	nc  atomic.Pointer[nats.Conn]
	reg atomic.Pointer[registry.Registry]

	mu      sync.Mutex
	plugins []*remotePlugin
	digest  [32]byte
	loaded  atomic.Bool
	wake    chan struct{}
}

// New returns a Source with no catalog. Registrations feeds the registry;
// Start connects it.
func New(cfg Config) *Source {
	if cfg.Mode == "" {
		cfg.Mode = ModeAuto
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = DefaultRefresh
	}
	if cfg.CatalogTimeout <= 0 {
		cfg.CatalogTimeout = DefaultCatalogTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Source{cfg: cfg, log: log, wake: make(chan struct{}, 1)}
}

// Registrations is pluginreg.All plus one per remote plugin: the
// source to build the registry with (registry.New(s.Registrations)).
// Remote plugins come last, so a Go plugin of the same slug wins (the
// remote one is a "Duplicate plugin slug" load error).
func (s *Source) Registrations() []pluginreg.Registration {
	regs := pluginreg.All()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.plugins {
		p := p
		regs = append(regs, pluginreg.Registration{Name: "remote:" + p.manifest.Slug,
			Load: func() (any, error) { return p, nil }})
	}
	return regs
}

// Loaded reports whether a catalog has been loaded from a host.
func (s *Source) Loaded() bool { return s.loaded.Load() }

// Registry wraps reg for the dispatcher: in ModeOn, before any catalog was
// loaded, an unknown plugin is *plugins.PluginUnavailableError (retried
// as unavailable), not unknown_handler.
func (s *Source) Registry(reg *registry.Registry) dispatch.Registry {
	return gated{reg: reg, s: s}
}

type gated struct {
	reg *registry.Registry
	s   *Source
}

func (g gated) Get(slug string) (*registry.Entry, error) {
	e, err := g.reg.Get(slug)
	if err != nil && g.s.cfg.Mode == ModeOn && !g.s.loaded.Load() {
		return nil, &plugins.PluginUnavailableError{Message: fmt.Sprintf(
			"plugin %q is not registered and no plugin host has answered yet (--remote-plugins=on)", slug), Err: err}
	}
	return e, err
}

// Start loads the catalog once (a missing host is not an error), then
// reloads it on every announce, when asked by a reply, and every Refresh,
// until ctx ends. reg is reloaded whenever the catalog changes.
func (s *Source) Start(ctx context.Context, nc *nats.Conn, reg *registry.Registry) error {
	if s.cfg.Mode == ModeOff {
		return nil
	}
	s.nc.Store(nc)
	s.reg.Store(reg)
	sub, err := nc.Subscribe(wire.PluginAnnounceSubject, func(*nats.Msg) { s.Wake() })
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", wire.PluginAnnounceSubject, err)
	}
	if _, err := s.Refresh(ctx); err != nil {
		s.log.Info("no plugin host answered the catalog request; will retry", "error", err.Error(), "mode", string(s.cfg.Mode))
	}
	go func() {
		defer func() { _ = sub.Unsubscribe() }()
		t := time.NewTicker(s.cfg.Refresh)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			case <-s.wake:
			}
			if _, err := s.Refresh(ctx); err != nil {
				s.log.Debug("catalog refresh failed", "error", err.Error())
			}
		}
	}()
	return nil
}

// Wake asks for a catalog reload soon (coalesced).
func (s *Source) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// ErrNoHost: no plugin host answered the catalog request.
var ErrNoHost = errors.New("no plugin host answered")

// Refresh requests the catalog and, when it changed, replaces the remote
// plugins and reloads the registry. A failed request keeps the current
// catalog (hosts restarting must not unregister their actions).
func (s *Source) Refresh(ctx context.Context) (changed bool, err error) {
	nc := s.nc.Load()
	if nc == nil {
		return false, errors.New("remote source not started")
	}
	rctx, cancel := context.WithTimeout(ctx, s.cfg.CatalogTimeout)
	defer cancel()
	reply, err := nc.RequestWithContext(rctx, wire.PluginCatalogSubject, nil)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, context.DeadlineExceeded) {
			return false, fmt.Errorf("%w: %w", ErrNoHost, err)
		}
		return false, err
	}
	return s.apply(reply.Data)
}

// Apply installs a catalog reply as Refresh does (tests, and Refresh).
func (s *Source) apply(body []byte) (bool, error) {
	if len(body) > MaxCatalogBytes {
		return false, fmt.Errorf("catalog reply of %d bytes exceeds %d", len(body), MaxCatalogBytes)
	}
	digest := sha256.Sum256(body)
	var entries []CatalogEntry
	if err := json.Unmarshal(body, &entries); err != nil {
		return false, fmt.Errorf("catalog reply: %w", err)
	}
	if len(entries) > MaxCatalogEntries {
		return false, fmt.Errorf("catalog of %d actions exceeds %d", len(entries), MaxCatalogEntries)
	}
	ps, err := s.build(entries)
	if err != nil {
		return false, err
	}
	s.mu.Lock()
	same := s.digest == digest && s.loaded.Load()
	if !same {
		s.plugins, s.digest = ps, digest
	}
	s.mu.Unlock()
	s.loaded.Store(true)
	if same {
		return false, nil
	}
	handlers := make([]string, 0, len(entries))
	for _, e := range entries {
		handlers = append(handlers, e.Handler)
	}
	if reg := s.reg.Load(); reg != nil {
		res, err := reg.Reload()
		if err != nil {
			return true, fmt.Errorf("reload registry: %w", err)
		}
		for name, msg := range res.Errors {
			if strings.HasPrefix(name, "remote:") {
				s.log.Error("remote plugin failed to load", "registration", name, "error", msg)
			}
		}
	}
	// Logged once the registry serves the new catalog.
	s.log.Info("remote plugin catalog loaded", "handlers", handlers)
	return true, nil
}

// build groups entries by plugin slug (first manifest wins).
func (s *Source) build(entries []CatalogEntry) ([]*remotePlugin, error) {
	bySlug := map[string]*remotePlugin{}
	var out []*remotePlugin
	for _, e := range entries {
		h, err := wire.ParseHandler(e.Handler)
		if err != nil {
			s.log.Warn("catalog entry ignored", "handler", e.Handler, "error", err.Error())
			continue
		}
		p := bySlug[h.Plugin]
		if p == nil {
			var m plugins.PluginManifest
			if err := json.Unmarshal(e.Manifest, &m); err != nil {
				s.log.Warn("catalog entry ignored: bad manifest", "handler", e.Handler, "error", err.Error())
				continue
			}
			if m.Slug != h.Plugin {
				s.log.Warn("catalog entry ignored: manifest slug differs from handler", "handler", e.Handler, "slug", m.Slug)
				continue
			}
			p = &remotePlugin{src: s, manifest: m, pkg: e.Package, version: e.Version, host: e.Host}
			bySlug[h.Plugin] = p
			out = append(out, p)
		}
		if slices.ContainsFunc(p.entries, func(x CatalogEntry) bool { return x.Handler == e.Handler }) {
			continue
		}
		p.entries = append(p.entries, e)
	}
	return out, nil
}

// remotePlugin is a webhook plugin whose actions run on a host.
type remotePlugin struct {
	src      *Source
	manifest plugins.PluginManifest
	pkg      string
	version  string
	host     string
	entries  []CatalogEntry
}

func (p *remotePlugin) Manifest() plugins.PluginManifest { return p.manifest }

// PackageInfo is the plugin's Python distribution (the registry shows it).
func (p *remotePlugin) PackageInfo() (string, string) {
	name, ver := p.pkg, p.version
	if name == "" {
		name = "unknown"
	}
	if ver == "" {
		ver = "unknown"
	}
	return "python:" + name, ver
}

// Host is the id of the host that answered the catalog.
func (p *remotePlugin) Host() string { return p.host }

func (p *remotePlugin) Actions() ([]plugins.ActionDescriptor, error) {
	out := make([]plugins.ActionDescriptor, 0, len(p.entries))
	for _, e := range p.entries {
		h, _ := wire.ParseHandler(e.Handler) // checked in build
		var opts []plugins.ActionOption
		if e.Description != nil {
			opts = append(opts, plugins.WithDescription(*e.Description))
		}
		if t := p.src.timeout(e.TimeoutSeconds); t > 0 {
			opts = append(opts, plugins.WithTimeout(t))
		}
		label := e.Label
		if label == "" {
			label = h.Action
		}
		d, err := plugins.NewSchemaAction(h.Action, label, e.ConfigSchema, p.src.runner(h), opts...)
		if err != nil {
			return nil, fmt.Errorf("remote action %s: %w", e.Handler, err)
		}
		out = append(out, d)
	}
	return out, nil
}

// timeout is the catalog's timeout capped by TimeoutCap.
func (s *Source) timeout(secs *float64) time.Duration {
	var t time.Duration
	if secs != nil && *secs > 0 {
		t = time.Duration(*secs * float64(time.Second))
	}
	if c := s.cfg.TimeoutCap; c > 0 && (t == 0 || t > c) {
		t = c
	}
	return t
}

var traceContext = propagation.TraceContext{}

// runner sends one action to a host and maps its reply to the errors Go
// actions return (wire contract §4 classes).
func (s *Source) runner(h wire.Handler) plugins.ActionFunc[json.RawMessage] {
	subject := wire.PluginRunPrefix + "." + h.Plugin + "." + h.Action
	handler := h.String()
	return func(ctx context.Context, in plugins.ActionInput[json.RawMessage]) error {
		nc := s.nc.Load()
		msg := dispatch.MessageFrom(ctx)
		if nc == nil || msg == nil {
			return &plugins.PluginUnavailableError{Message: "remote action outside a connected worker"}
		}
		deadline, ok := ctx.Deadline()
		if !ok {
			return plugins.Permanent(errors.New("remote action without a deadline"))
		}
		req := RunRequest{ActionID: msg.ActionID, Attempt: dispatch.AttemptFrom(ctx),
			Deadline: deadline.UTC().Format(time.RFC3339Nano), Data: msg.Data}
		if len(in.Credentials) > 0 {
			if s.cfg.Keys == nil {
				return &plugins.PluginCredentialsMissing{Message: "worker has no encryption key to send credentials to the plugin host"}
			}
			plain, err := json.Marshal(map[string]string(in.Credentials))
			if err != nil {
				return err
			}
			tok, err := s.cfg.Keys.Encrypt(string(plain))
			if err != nil {
				return &plugins.PluginCredentialsMissing{Message: "cannot encrypt credentials for the plugin host"}
			}
			req.Credentials = tok
		}
		body, err := json.Marshal(req)
		if err != nil {
			return plugins.Permanent(fmt.Errorf("encode run request: %w", err))
		}
		nm := nats.NewMsg(subject)
		nm.Data = body
		// Lower-case names, as wire.HeaderTraceparent (NATS header lookup
		// is case-sensitive; http.Header would canonicalise them).
		if trace.SpanContextFromContext(ctx).IsValid() {
			carrier := propagation.MapCarrier{}
			traceContext.Inject(ctx, carrier)
			for k, v := range carrier {
				nm.Header[k] = []string{v}
			}
		} else if msg.Traceparent != "" {
			nm.Header[wire.HeaderTraceparent] = []string{msg.Traceparent}
		}
		reply, err := nc.RequestMsgWithContext(ctx, nm)
		switch {
		case errors.Is(err, nats.ErrNoResponders):
			return &plugins.PluginUnavailableError{Message: "no plugin host serves " + handler, Err: err}
		case err != nil && ctx.Err() != nil:
			return ctx.Err() // the deadline: dispatch reports timeout
		case err != nil:
			return &plugins.PluginUnavailableError{Message: "plugin host request failed: " + err.Error(), Err: err}
		}
		return s.mapReply(handler, h.Action, reply)
	}
}

// HostError is a failure a host reported with a class this worker has no
// typed error for; it is retried as action_failed.
type HostError struct {
	Class   string
	Message string
}

func (e *HostError) Error() string { return "plugin host: " + e.Message }

func (s *Source) mapReply(handler, action string, reply *nats.Msg) error {
	if code := reply.Header.Get("Nats-Service-Error-Code"); code != "" {
		return &plugins.PluginUnavailableError{Message: "plugin host error " + code + ": " + clip(reply.Header.Get("Nats-Service-Error"))}
	}
	var r RunReply
	if err := json.Unmarshal(reply.Data, &r); err != nil {
		return &HostError{Class: string(wire.ReasonActionFailed), Message: "reply is not JSON"}
	}
	if r.Status == "ok" {
		return nil
	}
	text := "plugin host: " + clip(r.Message)
	switch wire.Reason(r.Class) {
	case wire.ReasonCredentialsMissing:
		return &plugins.PluginCredentialsMissing{Message: text}
	case wire.ReasonInvalidConfig:
		return &plugins.ConfigError{Action: action, Err: errors.New(text)}
	case wire.ReasonTimeout:
		return &plugins.PluginTimeoutError{Message: text}
	case wire.ReasonUnavailable:
		return &plugins.PluginUnavailableError{Message: text}
	case wire.ReasonRateLimited:
		wait := time.Second
		if r.RetryAt != nil {
			at := time.Unix(0, int64(*r.RetryAt*float64(time.Second)))
			wait = max(time.Until(at), 0)
		}
		return plugins.RetryAfter(errors.New(text), wait)
	case wire.ReasonUnknownHandler:
		// The host that answered lacks the action (a rolling upgrade, or
		// a stale catalog here): reload the catalog and retry.
		s.Wake()
		return &plugins.PluginUnavailableError{Message: text}
	case wire.ReasonInvalidEvent, wire.ReasonInvalidHandler:
		return plugins.Permanent(&HostError{Class: r.Class, Message: clip(r.Message)})
	default:
		return &HostError{Class: r.Class, Message: clip(r.Message)}
	}
}

func clip(s string) string {
	if len(s) <= replyMessageMax {
		return s
	}
	b := []byte(s[:replyMessageMax])
	for len(b) > 0 && !utf8Valid(b) {
		b = b[:len(b)-1]
	}
	return string(b)
}

func utf8Valid(b []byte) bool { return bytes.Equal(b, bytes.ToValidUTF8(b, nil)) }
