// Package console is the operator console of issue 18: a JSON API under
// /api/v1/ and HTML pages under /ui/, both on the admin server, for dead
// letters (filter, inspect, bulk replay, purge), outcomes, lanes and the
// action catalog.
//
// Everything needs IMBI_ADMIN_TOKEN: as a bearer token (API clients) or
// through the login page, which sets a session cookie (SameSite=Strict,
// HttpOnly, Secure over TLS). Every POST is checked for a same-origin
// Origin / Sec-Fetch-Site and, when the cookie authenticated it, for the
// session's CSRF token. Read-only mode refuses every mutation with 403.
// Without a token the console is off and says how to turn it on.
package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aweber-imbi/imbi-worker/internal/dlq"
)

// EnvToken is the environment variable holding the admin token.
const EnvToken = "IMBI_ADMIN_TOKEN"

// CookieName is the session cookie.
const CookieName = "imbi_console"

// CSRFHeader carries the CSRF token on cookie-authenticated API POSTs;
// HTML forms send it as the form field "csrf".
const CSRFHeader = "X-CSRF-Token"

// DefaultSessionTTL is how long a console login lasts.
const DefaultSessionTTL = 12 * time.Hour

// disabledText is what /ui/ and /api/ say when no token is configured.
const disabledText = "the operator console is off: set " + EnvToken + " (a long random secret) in the worker's environment and restart it; keep --admin-addr on loopback or behind TLS"

// Config configures New.
type Config struct {
	// Token is IMBI_ADMIN_TOKEN; empty turns the console off.
	Token string
	// ReadOnly refuses every mutation (403).
	ReadOnly bool
	// DLQ is the dead-letter stream; nil until SetDLQ (the endpoints
	// answer 503 meanwhile).
	DLQ *dlq.Store
	// Outcomes and Lanes are optional (503 "not enabled" when nil).
	Outcomes OutcomeReader
	Lanes    LaneStore
	// Actions returns the action catalog (what `imbi-worker actions
	// --json` prints); nil: an empty catalog.
	Actions func() any
	Logger  *slog.Logger
	// SessionTTL defaults to DefaultSessionTTL.
	SessionTTL time.Duration
	// Now defaults to time.Now (tests).
	Now func() time.Time
}

// Console serves /api/ and /ui/.
type Console struct {
	cfg     Config
	ix      atomic.Pointer[index]
	mux     *http.ServeMux
	routes  []Route
	csrfKey []byte
	tpl     *templates

	mu       sync.Mutex
	sessions map[string]time.Time // session id -> expiry

	jobs *jobs
	// ctx ends at Close (background indexing).
	ctx  context.Context
	stop context.CancelFunc

	outcomeP atomic.Pointer[outcomeBox]
	laneP    atomic.Pointer[laneBox]
}

type outcomeBox struct{ r OutcomeReader }
type laneBox struct{ s LaneStore }

// SetOutcomes wires the outcome reader (nil: not enabled), for a store
// built after the admin server started.
func (c *Console) SetOutcomes(r OutcomeReader) { c.outcomeP.Store(&outcomeBox{r}) }

// SetLanes wires the lane store (nil: not enabled).
func (c *Console) SetLanes(s LaneStore) { c.laneP.Store(&laneBox{s}) }

func (c *Console) outcomeReader() OutcomeReader {
	if b := c.outcomeP.Load(); b != nil {
		return b.r
	}
	return nil
}

func (c *Console) laneStore() LaneStore {
	if b := c.laneP.Load(); b != nil {
		return b.s
	}
	return nil
}

// Route is one registered endpoint (the OpenAPI test compares these with
// docs/openapi.yaml).
type Route struct {
	Method, Pattern string
	// API is true for /api/v1 routes (JSON), false for /ui pages.
	API bool
	h   http.HandlerFunc
}

// New builds the console.
func New(cfg Config) *Console {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Console{cfg: cfg, mux: http.NewServeMux(), sessions: map[string]time.Time{}, tpl: mustTemplates()}
	c.csrfKey = make([]byte, 32)
	_, _ = rand.Read(c.csrfKey)
	c.jobs = newJobs()
	c.ctx, c.stop = context.WithCancel(context.Background())
	if cfg.DLQ != nil {
		c.SetDLQ(cfg.DLQ)
	}
	c.SetOutcomes(cfg.Outcomes)
	c.SetLanes(cfg.Lanes)
	c.routes = append(c.apiRoutes(), c.uiRoutes()...)
	for _, r := range c.routes {
		c.mux.HandleFunc(r.Method+" "+r.Pattern, r.h)
	}
	return c
}

// SetDLQ wires the dead-letter stream (the worker opens it after the
// admin server started) and starts indexing it in the background, so the
// first page does not wait for a large stream to be read.
func (c *Console) SetDLQ(s *dlq.Store) {
	ix := newIndex(s)
	c.ix.Store(ix)
	if !c.Enabled() {
		return
	}
	c.jobs.wg.Go(func() {
		ctx, cancel := context.WithTimeout(c.ctx, 10*time.Minute)
		defer cancel()
		start := time.Now()
		if err := ix.warm(ctx); err != nil {
			c.cfg.Logger.Warn("operator console: indexing dead letters failed; the next request retries", "error", err)
			return
		}
		c.cfg.Logger.Info("operator console: dead letters indexed", "took", time.Since(start).Round(time.Millisecond))
	})
}

// Routes lists the registered routes.
func (c *Console) Routes() []Route { return c.routes }

// Enabled reports whether a token is configured.
func (c *Console) Enabled() bool { return c.cfg.Token != "" }

// Close stops running replay jobs and background indexing.
func (c *Console) Close() {
	c.stop()
	c.jobs.cancelAll()
}

func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	// same-origin, not no-referrer: with no-referrer a browser sends
	// "Origin: null" on form posts, which the origin check must refuse.
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
}

func isAPI(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/api/") }

// ServeHTTP authenticates, checks the request and dispatches it.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w.Header())
	if strings.HasPrefix(r.URL.Path, "/ui/static/") && r.Method == http.MethodGet {
		c.static(w, r)
		return
	}
	if !c.Enabled() {
		if isAPI(r) {
			writeErr(w, http.StatusServiceUnavailable, disabledText)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		c.tpl.render(w, "disabled", pageData{Title: "Console off", Message: disabledText})
		return
	}
	if r.Method == http.MethodPost {
		if !sameOrigin(r) {
			c.refuse(w, r, http.StatusForbidden, "cross-origin request refused")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		if !isAPI(r) {
			_ = r.ParseForm() // forms carry the filter and the CSRF token
		}
	}
	if r.URL.Path == "/ui/login" {
		c.login(w, r)
		return
	}
	sess, bearer := c.authenticate(r)
	if sess == "" && !bearer {
		if isAPI(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="imbi-worker"`)
			writeErr(w, http.StatusUnauthorized, "authentication required: send Authorization: Bearer <"+EnvToken+">")
			return
		}
		http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
		return
	}
	if r.Method == http.MethodPost {
		// A bearer token is never sent by a browser on its own, so only
		// cookie-authenticated posts can be forged across sites.
		if !bearer && !c.checkCSRF(r, sess) {
			c.refuse(w, r, http.StatusForbidden, "missing or wrong CSRF token; reload the page")
			return
		}
		if c.cfg.ReadOnly && r.URL.Path != "/ui/logout" {
			c.refuse(w, r, http.StatusForbidden, "the console is read-only (--admin-read-only)")
			return
		}
	}
	r = r.WithContext(context.WithValue(r.Context(), sessionKey{}, sess))
	c.mux.ServeHTTP(w, r)
}

type sessionKey struct{}

func sessionOf(r *http.Request) string {
	s, _ := r.Context().Value(sessionKey{}).(string)
	return s
}

func (c *Console) refuse(w http.ResponseWriter, r *http.Request, code int, msg string) {
	if isAPI(r) {
		writeErr(w, code, msg)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	c.tpl.render(w, "error", pageData{Title: http.StatusText(code), Message: msg})
}

// sameOrigin accepts a request whose Sec-Fetch-Site is same-origin or none
// (typed in) and whose Origin, when sent, is this host. Clients that send
// neither (curl) pass: they are not browsers, so no site can forge them.
func sameOrigin(r *http.Request) bool {
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" && s != "none" {
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" {
		return false // includes "null"
	}
	return strings.EqualFold(u.Host, r.Host)
}

func tokenEqual(a, b string) bool {
	// Hash first: ConstantTimeCompare leaks length differences.
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

// authenticate returns the session id of a valid cookie, or bearer=true
// for a valid Authorization header.
func (c *Console) authenticate(r *http.Request) (sess string, bearer bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		return "", ok && tokenEqual(tok, c.cfg.Token)
	}
	ck, err := r.Cookie(CookieName)
	if err != nil || ck.Value == "" {
		return "", false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	exp, ok := c.sessions[ck.Value]
	if !ok {
		return "", false
	}
	if c.cfg.Now().After(exp) {
		delete(c.sessions, ck.Value)
		return "", false
	}
	return ck.Value, false
}

// csrfToken is tied to the session: HMAC(key, session id).
func (c *Console) csrfToken(sess string) string {
	if sess == "" {
		return ""
	}
	m := hmac.New(sha256.New, c.csrfKey)
	m.Write([]byte(sess))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (c *Console) checkCSRF(r *http.Request, sess string) bool {
	got := r.Header.Get(CSRFHeader)
	if got == "" && !isAPI(r) {
		got = r.PostFormValue("csrf")
	}
	want := c.csrfToken(sess)
	return got != "" && want != "" && hmac.Equal([]byte(got), []byte(want))
}

func (c *Console) newSession() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	id := base64.RawURLEncoding.EncodeToString(b)
	now := c.cfg.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, exp := range c.sessions {
		if now.After(exp) {
			delete(c.sessions, k)
		}
	}
	c.sessions[id] = now.Add(c.cfg.SessionTTL)
	return id
}

func (c *Console) endSession(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.sessions, id)
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		c.tpl.render(w, "login", pageData{Title: "Log in"})
	case http.MethodPost:
		if !tokenEqual(r.PostFormValue("token"), c.cfg.Token) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(http.StatusUnauthorized)
			c.tpl.render(w, "login", pageData{Title: "Log in", Message: "wrong token"})
			return
		}
		http.SetCookie(w, &http.Cookie{
			Name: CookieName, Value: c.newSession(), Path: "/",
			HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
			MaxAge: int(c.cfg.SessionTTL / time.Second),
		})
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// ErrorBody is every API error.
type ErrorBody struct {
	Error string `json:"error"`
}

func writeErr(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, ErrorBody{Error: msg})
}

// Pattern is the route pattern r would be served by ("" when none
// matches, or the method is not allowed), for the OpenAPI test.
func (c *Console) Pattern(r *http.Request) string {
	_, p := c.mux.Handler(r)
	return p
}
