// Package httprequest is the built-in "http" webhook plugin. Its one action,
// "request" (handler http#request), sends an HTTP request built from the
// event: a templated URL path and query, method, headers and body, with an
// optional bearer token from the plugin's credentials. It is how an
// operator forwards a webhook, or the parts of it that matter, to an HTTP
// endpoint of the rule's choosing without writing a plugin.
//
// # Where the request goes
//
// Only the rule's config chooses the destination, never the event: the
// url's scheme://host[:port] must be literal text ending in '/' or '?'
// before the first {{ }} (or the whole url is literal), and the output of
// every {{ }} in the url is escaped for where it lands: as a path segment
// (pathescape) before the first literal '?', as a query value (urlquery)
// after it. An action already ending in that escaper is left as it is.
// allowed_hosts, when set, lists the hosts the url may name ("*.example.com"
// matches subdomains). After DNS resolution the connection is refused to
// loopback, private, link-local, CGNAT, unspecified, multicast, reserved
// and cloud metadata addresses unless the operator runs the worker with
// --http-allow-private (Plugin.AllowPrivate); proxies from the environment
// are not used. Redirects are not followed (a 3xx is a permanent failure)
// unless follow_redirects is true, and then only to the same origin.
//
// # Templates
//
// url, every header value and body are Go text/template templates
// (https://pkg.go.dev/text/template) evaluated over the action's input as
// JSON, with the wire-contract field names:
//
//	.context              the PluginContext (.context.project_slug, .context.org_slug, …)
//	.external_identifier  the identifier the gateway resolved ("" when none)
//	.event                the event (.event.type, .event.third_party_service,
//	                      .event.metadata.headers, .event.payload.<field>…)
//
// context.identity (the user's access and refresh tokens) is never in the
// data: templates cannot read it and the default body does not carry it.
// A key that is not there is an error (the action fails permanently), not
// an empty string. Rendering is bounded (url and each header 8 KiB, body
// 1 MiB, 100,000 range iterations and template calls, 1 s). Extra
// functions:
//
//	pointer "/payload/repository/full_name"   value at a JSON Pointer (RFC 6901) in .event; error if absent
//	lookup "/payload/sender/login" "nobody"   same, with a default when absent
//	json .event.payload                        the value as JSON (for bodies)
//	pathescape / urlquery                      escape for a URL path segment / query value
//
// Without body, the request body is the JSON document
// {"context": …, "external_identifier": …, "event": …} (sensitive event
// headers stay redacted as they arrive). Example handler_config:
//
//	{"url": "https://hooks.example.com/deploys/{{ .context.project_slug | pathescape }}",
//	 "method": "POST",
//	 "headers": {"X-Event": "{{ .event.type }}"},
//	 "body": "{\"ref\": {{ pointer \"/payload/ref\" | json }}}"}
//
// # Outcomes
//
// 2xx is success. 429 and 503 with a Retry-After header are rate-limited
// (plugins.RetryAfter, the worker waits that long); without the header, 503
// is unavailable (retried with backoff) and 429 is an ordinary retryable
// failure. 502 and 504 and network errors are unavailable (retryable), other
// 5xx are retryable failures. 401 and 403 are permanent authentication
// failures, every other status is permanent. The response body is read up
// to 64 KiB and discarded, apart from an excerpt of at most 512 bytes in
// error texts, control characters removed and Bearer/Basic credentials
// and the plugin's credential values replaced by [redacted].
//
// The bearer token (credential "token", optional) goes only into the
// Authorization header, and only to the configured origin; error texts
// never contain it.
package httprequest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/aweber-imbi/imbi-worker/plugins"
)

// Slug is the plugin's slug; the action's handler is "http#request".
const (
	Slug       = "http"
	ActionName = "request"
	// CredentialToken is the optional credential sent as a bearer token.
	CredentialToken = "token"
)

// Limits that keep a misbehaving endpoint from costing the worker memory
// or leaking much of itself into dead-letter texts.
const (
	maxResponseRead = 64 << 10
	maxErrorExcerpt = 512
)

func init() { plugins.Register(Slug, New()) }

// Plugin is the "http" webhook plugin. The zero value is what the worker
// binary registers: private addresses refused, its own transport.
// imbi-worker run --http-allow-private loads WithAllowPrivate(true)
// instead.
type Plugin struct {
	// AllowPrivate lets requests connect to loopback, private, link-local,
	// CGNAT and metadata addresses (demos, tests, an operator whose
	// endpoints are internal).
	AllowPrivate bool
	// Transport sends every request; the actions of one registry load
	// share it (and its connection pool). Nil: a transport of the plugin's
	// own, without proxy, whose dialer refuses the addresses above unless
	// AllowPrivate. A non-nil Transport is used as it is (tests): it must
	// enforce any address policy itself.
	Transport http.RoundTripper
}

// New returns the plugin as the worker binary registers it.
func New() Plugin { return Plugin{} }

// WithAllowPrivate returns p with AllowPrivate set to allow: the hook
// imbi-worker run's --http-allow-private uses.
func (p Plugin) WithAllowPrivate(allow bool) plugins.Plugin {
	p.AllowPrivate = allow
	return p
}

// Manifest describes the plugin: a webhook plugin with one optional
// credential.
func (p Plugin) Manifest() plugins.PluginManifest {
	desc := "Send an HTTP request built from the webhook event (templated URL, headers and body)."
	tokenDesc := "Sent as 'Authorization: Bearer <token>' when set."
	m := plugins.NewManifest(Slug, "HTTP request", plugins.TypeWebhook)
	m.Description = &desc
	m.Cacheable = false
	m.Credentials = []plugins.CredentialField{{
		Name: CredentialToken, Label: "Bearer token", Description: &tokenDesc, Required: false,
	}}
	return m
}

// Actions is the catalogue: the one "request" action. The client built
// here (no timeout of its own: each request is bounded by the action's
// context deadline) serves every request of this registry load.
func (p Plugin) Actions() ([]plugins.ActionDescriptor, error) {
	rt := p.Transport
	if rt == nil {
		rt = newTransport(p.AllowPrivate)
	}
	s := &sender{client: &http.Client{Transport: rt}}
	a, err := plugins.NewAction(ActionName, "Send an HTTP request", s.request,
		plugins.WithDescription("Templated URL path and query, method, headers and body to the rule's fixed origin; bearer token from the plugin credentials."))
	if err != nil {
		return nil, err
	}
	return []plugins.ActionDescriptor{a}, nil
}

// Config is the action's handler_config.
type Config struct {
	// URL template: literal scheme://host[:port]/ then a templated path and
	// query.
	URL string `json:"url" jsonschema:"minLength=1" jsonschema_description:"URL template (Go text/template over .context, .event, .external_identifier). The scheme://host[:port] must be literal text ending in '/' or '?' before the first {{ }}; event data fills only the path and the query, and each {{ }} output is escaped (pathescape in the path, urlquery in the query)."`
	// AllowedHosts, when set, are the only hosts url may name.
	AllowedHosts []string `json:"allowed_hosts,omitempty" jsonschema:"maxItems=64" jsonschema_description:"Hosts the url may name (exact, case-insensitive; '*.example.com' matches its subdomains). Absent: any host the url names literally."`
	// FollowRedirects follows same-origin redirects.
	FollowRedirects bool `json:"follow_redirects,omitempty" jsonschema_description:"Follow redirects to the same origin (scheme, host and port) only, at most 5. Default false: a 3xx answer is a permanent failure."`
	// Method, default POST.
	Method string `json:"method,omitempty" jsonschema:"enum=GET,enum=POST,enum=PUT,enum=PATCH,enum=DELETE,enum=HEAD,enum=OPTIONS,description=HTTP method (default POST)"`
	// Headers; each value is a template.
	Headers map[string]string `json:"headers,omitempty" jsonschema:"description=Request headers; values are templates"`
	// Body template; absent means the JSON of context, external_identifier and event.
	Body *string `json:"body,omitempty" jsonschema:"description=Body template; absent sends the event JSON"`
	// ContentType of the body, default application/json.
	ContentType string `json:"content_type,omitempty" jsonschema:"description=Content-Type of the body (default application/json)"`

	parsed *parsedConfig
}

type parsedConfig struct {
	url     *urlTemplate
	body    *template.Template
	headers map[string]*template.Template
}

// Validate parses every template once, when the worker decodes the config,
// so a template syntax error is an invalid_config dead letter, not an action
// failure.
func (c *Config) Validate() error {
	if c.Method == "" {
		c.Method = http.MethodPost
	}
	c.Method = strings.ToUpper(c.Method)
	if c.ContentType == "" {
		c.ContentType = "application/json"
	}
	p := &parsedConfig{headers: map[string]*template.Template{}}
	var err error
	if p.url, err = parseURLTemplate(c.URL); err != nil {
		return err
	}
	if err := checkAllowedHosts(c.AllowedHosts, p.url.origin.host); err != nil {
		return err
	}
	if c.Body != nil {
		if p.body, err = parseBounded("body", *c.Body); err != nil {
			return err
		}
	}
	for name, v := range c.Headers {
		if !validHeaderName(name) {
			return fmt.Errorf("header name %q is not a valid HTTP header name", name)
		}
		if p.headers[name], err = parseBounded("header "+name, v); err != nil {
			return err
		}
	}
	c.parsed = p
	return nil
}

func parseTemplate(name, text string) (*template.Template, error) {
	t, err := template.New(name).Option("missingkey=error").Funcs(templateFuncs).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("%s template: %w", name, err)
	}
	return t, nil
}

// parseBounded is parseTemplate with the work bound's ticks added.
func parseBounded(name, text string) (*template.Template, error) {
	t, err := parseTemplate(name, text)
	if err != nil {
		return nil, err
	}
	addTicks(t)
	return t, nil
}

// checkAllowedHosts validates allowed_hosts and that host is one of them
// (when any are given).
func checkAllowedHosts(allowed []string, host string) error {
	if len(allowed) == 0 {
		return nil
	}
	for _, a := range allowed {
		a = strings.ToLower(strings.TrimSpace(a))
		if a == "" || strings.ContainsAny(a, "/:@?# ") {
			return fmt.Errorf("allowed_hosts: %q is not a host name", a)
		}
		if suffix, ok := strings.CutPrefix(a, "*."); ok {
			if strings.HasSuffix(host, "."+suffix) {
				return nil
			}
		} else if host == a {
			return nil
		}
	}
	return &URLError{Reason: fmt.Sprintf("host %q is not in allowed_hosts", host)}
}

// templateFuncs are the functions every template may call; it never
// changes after init. pointer and lookup read the event of the call being
// rendered, so these parse-time versions only fix their names and arity;
// render binds the real ones (eventFuncs).
var templateFuncs = template.FuncMap{
	"pointer":    func(string) (any, error) { return nil, errors.New("pointer: no event bound") },
	"lookup":     func(string, any) (any, error) { return nil, errors.New("lookup: no event bound") },
	tickFunc:     func() (string, error) { return "", errors.New("tick: not bound") },
	"json":       toJSON,
	"pathescape": func(v any) string { return url.PathEscape(fmt.Sprint(v)) },
}

// eventFuncs binds pointer and lookup to one event document, and the
// work bound to k.
func eventFuncs(event any, k *ticker) template.FuncMap {
	return template.FuncMap{
		tickFunc: k.tick,
		"pointer": func(ptr string) (any, error) {
			v, ok, err := resolvePointer(event, ptr)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, fmt.Errorf("JSON Pointer %q: not in the event", ptr)
			}
			return v, nil
		},
		"lookup": func(ptr string, def any) (any, error) {
			v, ok, err := resolvePointer(event, ptr)
			if err != nil {
				return nil, err
			}
			if !ok {
				return def, nil
			}
			return v, nil
		},
	}
}

func toJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		if r > 0x7e || r <= 0x20 || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}

// sender is the state the action shares across calls: the client.
type sender struct{ client *http.Client }

// request is the action.
func (s *sender) request(ctx context.Context, in plugins.ActionInput[Config]) error {
	cfg := in.Config
	if cfg.parsed == nil {
		// Built without DecodeConfig (a direct call): parse now.
		if err := cfg.Validate(); err != nil {
			return plugins.Permanent(err)
		}
	}
	data, err := templateData(in)
	if err != nil {
		return plugins.Permanent(err)
	}
	token := in.Credentials[CredentialToken]
	req, err := buildRequest(ctx, cfg, data)
	if err != nil {
		return plugins.Permanent(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}

	client := *s.client // per call: the redirect policy is the rule's
	client.CheckRedirect = checkRedirect(cfg.FollowRedirects)
	resp, err := client.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			// The worker classifies a deadline as a timeout.
			return fmt.Errorf("%s %s: %w", req.Method, redactURL(req.URL), ctxErr)
		}
		var addrErr *AddressError
		var redirErr *RedirectError
		if errors.As(err, &addrErr) || errors.As(err, &redirErr) {
			// The policy will refuse the same destination next time.
			return plugins.Permanent(fmt.Errorf("%s %s: %w", req.Method, redactURL(req.URL), unwrapURLError(err)))
		}
		return &plugins.PluginUnavailableError{
			Message: fmt.Sprintf("%s %s: %s", req.Method, redactURL(req.URL), excerpt([]byte(unwrapURLError(err).Error()), in.Credentials)),
			Err:     err,
		}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseRead))
	return classify(req, resp, excerpt(body, in.Credentials))
}

// templateData is the input as JSON with the wire-contract names, without
// context.identity: the user's tokens are never forwarded.
func templateData(in plugins.ActionInput[Config]) (map[string]any, error) {
	pctx := in.Context
	pctx.Identity = nil
	raw, err := json.Marshal(map[string]any{
		"context":             pctx,
		"external_identifier": in.ExternalIdentifier,
		"event":               in.Event.Document(),
	})
	if err != nil {
		return nil, fmt.Errorf("encode template data: %w", err)
	}
	var doc map[string]any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber() // keep 12345678901234567890 exact when forwarded
	if err := d.Decode(&doc); err != nil {
		return nil, fmt.Errorf("decode template data: %w", err)
	}
	if c, ok := doc["context"].(map[string]any); ok {
		delete(c, "identity")
	}
	return doc, nil
}

func buildRequest(ctx context.Context, cfg Config, data map[string]any) (*http.Request, error) {
	k := &ticker{deadline: time.Now().Add(maxTemplateTime)}
	if d, ok := ctx.Deadline(); ok && d.Before(k.deadline) {
		k.deadline = d
	}
	funcs := eventFuncs(data["event"], k)
	render := func(t *template.Template, limit int) (string, error) {
		// Clone so concurrent messages sharing nothing but the parsed tree
		// bind their own event.
		bound, err := t.Clone()
		if err != nil {
			return "", err
		}
		bound.Funcs(funcs)
		w := &limitWriter{max: limit}
		if err := bound.Execute(w, data); err != nil {
			return "", err
		}
		return w.b.String(), nil
	}

	rawURL, err := render(cfg.parsed.url.tmpl, maxURLOutput)
	if err != nil {
		return nil, err
	}
	u, err := cfg.parsed.url.check(rawURL)
	if err != nil {
		return nil, err
	}

	var body []byte
	if cfg.parsed.body != nil {
		s, err := render(cfg.parsed.body, maxBodyOutput)
		if err != nil {
			return nil, err
		}
		body = []byte(s)
	} else if body, err = json.Marshal(data); err != nil {
		return nil, err
	}

	var reader io.Reader
	if len(body) > 0 && cfg.Method != http.MethodGet && cfg.Method != http.MethodHead {
		reader = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, cfg.Method, u.String(), reader)
	if err != nil {
		return nil, err
	}
	if reader != nil {
		req.Header.Set("Content-Type", cfg.ContentType)
	}
	req.Header.Set("User-Agent", "imbi-worker-http/1")
	names := make([]string, 0, len(cfg.parsed.headers))
	for name := range cfg.parsed.headers {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		v, err := render(cfg.parsed.headers[name], maxHeaderOutput)
		if err != nil {
			return nil, err
		}
		if strings.ContainsAny(v, "\r\n") {
			return nil, fmt.Errorf("header %s rendered a line break", name)
		}
		req.Header.Set(name, v)
	}
	return req, nil
}

// StatusError is a non-2xx response. Body is an excerpt of the response
// (excerpt: at most 512 bytes, no control characters, credentials
// redacted).
type StatusError struct {
	Method, URL string
	StatusCode  int
	Body        string
}

func (e *StatusError) Error() string {
	s := fmt.Sprintf("%s %s: HTTP %d", e.Method, e.URL, e.StatusCode)
	if e.Body != "" {
		s += ": " + e.Body
	}
	return s
}

func classify(req *http.Request, resp *http.Response, excerpt string) error {
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return nil
	}
	se := &StatusError{Method: req.Method, URL: redactURL(req.URL), StatusCode: code, Body: excerpt}
	if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
		if d, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			return plugins.RetryAfter(se, d)
		}
	}
	switch {
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return plugins.Permanent(&authError{StatusError: se})
	case code == http.StatusBadGateway || code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout:
		return &plugins.PluginUnavailableError{Message: se.Error(), Err: se}
	case code >= 500 || code == http.StatusTooManyRequests || code == http.StatusRequestTimeout:
		return se // retryable
	default:
		return plugins.Permanent(se)
	}
}

// authError is a 401/403: it matches plugins.ErrAuthenticationFailed and
// still unwraps to the *StatusError.
type authError struct{ *StatusError }

func (e *authError) Unwrap() error { return e.StatusError }
func (e *authError) Is(t error) bool {
	_, ok := t.(*plugins.PluginAuthenticationFailed)
	return ok
}

// retryAfter parses a Retry-After value: delay-seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.Atoi(v); err == nil {
		if secs < 0 {
			return 0, false
		}
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		if d < 0 {
			d = 0
		}
		return d, true
	}
	return 0, false
}

// redactURL drops user info and query values from URLs put in error texts:
// an operator may have templated an API key into the query.
func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	if c.RawQuery != "" {
		c.RawQuery = "[redacted]"
	}
	c.Fragment = ""
	return c.String()
}

// unwrapURLError returns the cause of a *url.Error, whose own text repeats
// the full URL (query included).
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
