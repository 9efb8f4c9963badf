// Package httprequest is the built-in "http" webhook plugin. Its one action,
// "request" (handler http#request), sends an HTTP request built from the
// event: a templated URL, method, headers and body, with an optional bearer
// token from the plugin's credentials. It is how an operator forwards a
// webhook, or the parts of it that matter, to any HTTP endpoint without
// writing a plugin.
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
// A key that is not there is an error (the action fails permanently), not
// an empty string. Extra functions:
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
// to 64 KiB and discarded, apart from a short excerpt in error texts.
//
// The bearer token (credential "token", optional) goes only into the
// Authorization header; error texts never contain it.
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
	maxErrorExcerpt = 200
)

func init() { plugins.Register(Slug, New()) }

// Plugin is the "http" webhook plugin. Client sends every request; the
// same client (and its connection pool) is reused for all of them.
type Plugin struct {
	Client *http.Client
}

// New returns the plugin with its own client. The client has no timeout of
// its own: each request is bounded by the action's context deadline.
func New() Plugin {
	return Plugin{Client: &http.Client{
		Transport: http.DefaultTransport.(*http.Transport).Clone(),
		// Redirects are followed (up to 10) as browsers do, but the
		// Authorization header is dropped on a redirect to another host by
		// net/http itself.
	}}
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

// Actions is the catalogue: the one "request" action.
func (p Plugin) Actions() ([]plugins.ActionDescriptor, error) {
	a, err := plugins.NewAction(ActionName, "Send an HTTP request", p.request,
		plugins.WithDescription("Templated URL, method, headers and body; bearer token from the plugin credentials."))
	if err != nil {
		return nil, err
	}
	return []plugins.ActionDescriptor{a}, nil
}

// Config is the action's handler_config.
type Config struct {
	// URL template; must render to an absolute http or https URL.
	URL string `json:"url" jsonschema:"minLength=1,description=URL template (Go text/template over .context .event .external_identifier)"`
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
	url     *template.Template
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
	if p.url, err = parseTemplate("url", c.URL); err != nil {
		return err
	}
	if c.Body != nil {
		if p.body, err = parseTemplate("body", *c.Body); err != nil {
			return err
		}
	}
	for name, v := range c.Headers {
		if !validHeaderName(name) {
			return fmt.Errorf("header name %q is not a valid HTTP header name", name)
		}
		if p.headers[name], err = parseTemplate("header "+name, v); err != nil {
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

// templateFuncs are the functions every template may call; it never
// changes after init. pointer and lookup read the event of the call being
// rendered, so these parse-time versions only fix their names and arity;
// render binds the real ones (eventFuncs).
var templateFuncs = template.FuncMap{
	"pointer":    func(string) (any, error) { return nil, errors.New("pointer: no event bound") },
	"lookup":     func(string, any) (any, error) { return nil, errors.New("lookup: no event bound") },
	"json":       toJSON,
	"pathescape": func(v any) string { return url.PathEscape(fmt.Sprint(v)) },
}

// eventFuncs binds pointer and lookup to one event document.
func eventFuncs(event any) template.FuncMap {
	return template.FuncMap{
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

// request is the action.
func (p Plugin) request(ctx context.Context, in plugins.ActionInput[Config]) error {
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

	client := p.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			// The worker classifies a deadline as a timeout.
			return fmt.Errorf("%s %s: %w", req.Method, redactURL(req.URL), ctxErr)
		}
		return &plugins.PluginUnavailableError{
			Message: fmt.Sprintf("%s %s: %s", req.Method, redactURL(req.URL), scrub(unwrapURLError(err).Error(), token)),
			Err:     err,
		}
	}
	defer resp.Body.Close()
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseRead))
	return classify(req, resp, scrub(shorten(string(excerpt)), token))
}

// templateData is the input as JSON with the wire-contract names.
func templateData(in plugins.ActionInput[Config]) (map[string]any, error) {
	raw, err := json.Marshal(map[string]any{
		"context":             in.Context,
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
	return doc, nil
}

func buildRequest(ctx context.Context, cfg Config, data map[string]any) (*http.Request, error) {
	funcs := eventFuncs(data["event"])
	render := func(t *template.Template) (string, error) {
		// Clone so concurrent messages sharing nothing but the parsed tree
		// bind their own event.
		bound, err := t.Clone()
		if err != nil {
			return "", err
		}
		bound.Funcs(funcs)
		var b strings.Builder
		if err := bound.Execute(&b, data); err != nil {
			return "", err
		}
		return b.String(), nil
	}

	rawURL, err := render(cfg.parsed.url)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(strings.TrimSpace(rawURL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("url template rendered %q: not an absolute http(s) URL", redactRawURL(rawURL))
	}

	var body []byte
	if cfg.parsed.body != nil {
		s, err := render(cfg.parsed.body)
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
		v, err := render(cfg.parsed.headers[name])
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

// StatusError is a non-2xx response. Body is a short excerpt of the
// response, scrubbed of the bearer token.
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

func redactRawURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return redactURL(u)
	}
	return "[unparseable]"
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

// scrub removes the token from text that came from elsewhere (an endpoint
// that echoes request headers, an error that quotes them).
func scrub(s, token string) string {
	if token == "" {
		return s
	}
	return strings.ReplaceAll(s, token, "[redacted]")
}

func shorten(s string) string {
	s = strings.TrimSpace(s)
	if len(s) <= maxErrorExcerpt {
		return s
	}
	cut := maxErrorExcerpt
	for cut > 0 && !utf8Start(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }
