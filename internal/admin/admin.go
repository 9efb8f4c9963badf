// Package admin is the worker's operator HTTP server: /healthz (the process
// is alive), /readyz (it should receive work: NATS connected, consumer bound,
// Neo4j reachable when configured, not draining) and /metrics (Prometheus).
//
// It listens on loopback by default; in Kubernetes the probes and the
// Prometheus scrape reach it on the pod IP (--admin-addr 0.0.0.0:9090).
//
// With Config.Console it also serves the operator console (/api/v1/…,
// /ui/; internal/console), which needs IMBI_ADMIN_TOKEN; the three probe
// endpoints stay open.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultAddr is --admin-addr's default: loopback, so nothing is exposed
// unless the operator says so.
const DefaultAddr = "127.0.0.1:9090"

// DefaultCheckTimeout bounds every readiness check, so a hung dependency
// answers "not ready" within a probe's timeout instead of hanging it.
const DefaultCheckTimeout = 2 * time.Second

// CheckDraining is the name of the built-in check that fails once shutdown
// has begun.
const CheckDraining = "draining"

// Check is one named readiness condition; nil error = satisfied.
type Check struct {
	Name  string
	Check func(ctx context.Context) error
}

// Readier is the worker: nil once connected with its consumer bound.
type Readier interface{ Ready() error }

// Pinger is a dependency that can be probed, e.g. the Neo4j credential
// store.
type Pinger interface {
	Ping(ctx context.Context) error
}

// ReadyCheck adapts a Readier.
func ReadyCheck(name string, r Readier) Check {
	return Check{Name: name, Check: func(context.Context) error { return r.Ready() }}
}

// PingCheck adapts a Pinger.
func PingCheck(name string, p Pinger) Check {
	return Check{Name: name, Check: p.Ping}
}

// Config configures New.
type Config struct {
	// Addr is host:port to listen on (default DefaultAddr; port 0 picks one).
	Addr string
	// Checks are the readiness checks, run concurrently on every /readyz.
	Checks []Check
	// Metrics serves /metrics (404 when nil).
	Metrics http.Handler
	// Logger receives readiness transitions (default: discard).
	Logger *slog.Logger
	// CheckTimeout bounds each check (default DefaultCheckTimeout).
	CheckTimeout time.Duration
	// Console serves /api/ and /ui/ (the operator console, which does its
	// own authentication); nil leaves both unrouted (404).
	Console http.Handler
}

func (c *Config) setDefaults() {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.CheckTimeout <= 0 {
		c.CheckTimeout = DefaultCheckTimeout
	}
}

// Server is the admin HTTP server.
type Server struct {
	cfg      Config
	draining atomic.Bool
	mux      *http.ServeMux

	mu          sync.Mutex
	checks      []Check
	lastFailing []string // nil until the first /readyz; for transition logs
	srv         *http.Server
	ln          net.Listener
	serveErr    chan error
}

// New builds a server; Start makes it listen.
func New(cfg Config) *Server {
	cfg.setDefaults()
	s := &Server{cfg: cfg, checks: slices.Clone(cfg.Checks), mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	if cfg.Metrics != nil {
		s.mux.Handle("GET /metrics", cfg.Metrics)
	}
	if cfg.Console != nil {
		s.mux.Handle("/api/", cfg.Console)
		s.mux.Handle("/ui/", cfg.Console)
	}
	return s
}

// AddCheck adds a readiness check, for dependencies built after the server
// started (the server comes up first so /healthz answers during start-up).
func (s *Server) AddCheck(c Check) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks = append(s.checks, c)
}

// SetDraining turns readiness off for good: call it at the very start of
// shutdown so load balancers and KEDA stop counting this replica before
// its consumer stops pulling.
func (s *Server) SetDraining() { s.draining.Store(true) }

// Draining reports whether SetDraining was called.
func (s *Server) Draining() bool { return s.draining.Load() }

// Handler is the server's routes, for tests and embedding.
func (s *Server) Handler() http.Handler { return s.mux }

// Start listens on Config.Addr and serves in the background.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("admin: listen %s: %w", s.cfg.Addr, err)
	}
	srv := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second, // a /metrics scrape with many series
		IdleTimeout:       60 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelWarn),
	}
	s.mu.Lock()
	s.srv, s.ln, s.serveErr = srv, ln, make(chan error, 1)
	s.mu.Unlock()
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.serveErr <- err
	}()
	s.cfg.Logger.Info("admin server listening", "addr", ln.Addr().String())
	return nil
}

// Addr is the address the server listens on (after Start), e.g. with the
// port the kernel chose for ":0".
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Shutdown stops the server, letting in-flight requests finish within ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.SetDraining()
	s.mu.Lock()
	srv, errc := s.srv, s.serveErr
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Shutdown(ctx)
	if serveErr := <-errc; err == nil {
		err = serveErr
	}
	return err
}

type healthBody struct {
	Status string `json:"status"`
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	// Alive means the process serves HTTP: a dependency outage must not
	// get the pod restarted, only taken out of rotation (readyz).
	writeJSON(w, http.StatusOK, healthBody{Status: "alive"})
}

// CheckResult is one check in the /readyz body. Error texts are not
// included (they go to the log): the endpoint may be reachable by more
// people than the logs are.
type CheckResult struct {
	Name string `json:"name"`
	OK   bool   `json:"ok"`
}

// ReadyBody is the /readyz response.
type ReadyBody struct {
	Status  string        `json:"status"` // "ready" or "not_ready"
	Failing []string      `json:"failing,omitempty"`
	Checks  []CheckResult `json:"checks"`
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	body, errs := s.Readiness(r.Context())
	s.logTransition(body.Failing, errs)
	code := http.StatusOK
	if body.Status != "ready" {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, body)
}

// Readiness runs every check concurrently (each bounded by CheckTimeout)
// and reports, in check order, which failed. errs maps failing names to
// their errors.
func (s *Server) Readiness(ctx context.Context) (ReadyBody, map[string]error) {
	s.mu.Lock()
	checks := slices.Clone(s.checks)
	s.mu.Unlock()

	results := make([]error, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, s.cfg.CheckTimeout)
			defer cancel()
			results[i] = runCheck(cctx, c)
		})
	}
	wg.Wait()

	body := ReadyBody{Status: "ready", Checks: make([]CheckResult, 0, len(checks)+1)}
	errs := map[string]error{}
	draining := s.Draining()
	body.Checks = append(body.Checks, CheckResult{Name: CheckDraining, OK: !draining})
	if draining {
		body.Failing = append(body.Failing, CheckDraining)
		errs[CheckDraining] = errors.New("shutting down")
	}
	for i, c := range checks {
		ok := results[i] == nil
		body.Checks = append(body.Checks, CheckResult{Name: c.Name, OK: ok})
		if !ok {
			body.Failing = append(body.Failing, c.Name)
			errs[c.Name] = results[i]
		}
	}
	if len(body.Failing) > 0 {
		body.Status = "not_ready"
	}
	return body, errs
}

// runCheck returns when the check does or when ctx expires, whichever is
// first: a check that ignores its context cannot hang the probe.
func runCheck(ctx context.Context, c Check) (err error) {
	done := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Errorf("check panicked: %v", p)
			}
		}()
		done <- c.Check(ctx)
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("check timed out: %w", ctx.Err())
	}
}

// logTransition logs when the set of failing checks changes, not on every
// probe (a kubelet probes every few seconds).
func (s *Server) logTransition(failing []string, errs map[string]error) {
	s.mu.Lock()
	prev := s.lastFailing
	changed := prev == nil || !slices.Equal(prev, failing)
	if failing == nil {
		s.lastFailing = []string{}
	} else {
		s.lastFailing = slices.Clone(failing)
	}
	s.mu.Unlock()
	if !changed {
		return
	}
	if len(failing) == 0 {
		s.cfg.Logger.Info("ready")
		return
	}
	attrs := []any{"failing", strings.Join(failing, ",")}
	for _, name := range failing {
		attrs = append(attrs, slog.String("check."+name, errs[name].Error()))
	}
	s.cfg.Logger.Warn("not ready", attrs...)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
