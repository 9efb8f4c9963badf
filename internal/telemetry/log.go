package telemetry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"strings"

	"go.opentelemetry.io/otel/trace"

	"github.com/aweber-imbi/imbi-worker/internal/redact"
	"github.com/aweber-imbi/imbi-worker/plugins"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// Log formats accepted by NewLogger.
const (
	LogFormatAuto = "auto" // text on a terminal, JSON otherwise (the default)
	LogFormatJSON = "json"
	LogFormatText = "text"
)

// Log attribute keys this package adds to records logged with a span in
// their context.
const (
	LogKeyTraceID = "trace_id"
	LogKeySpanID  = "span_id"
)

// NewLogger builds the worker's logger: JSON lines (or text), at level
// ("debug", "info", "warn", "error", or a number; "" = info), wrapped in
// NewRedactingHandler. format "" means auto: text when w is a terminal.
func NewLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	lvl, err := ParseLevel(level)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler
	switch strings.ToLower(strings.TrimSpace(format)) {
	case "", LogFormatAuto:
		if isTerminal(w) {
			h = slog.NewTextHandler(w, opts)
		} else {
			h = slog.NewJSONHandler(w, opts)
		}
	case LogFormatJSON:
		h = slog.NewJSONHandler(w, opts)
	case LogFormatText:
		h = slog.NewTextHandler(w, opts)
	default:
		return nil, fmt.Errorf("telemetry: log format %q: use %s, %s or %s", format, LogFormatAuto, LogFormatJSON, LogFormatText)
	}
	return slog.New(NewRedactingHandler(h)), nil
}

// ParseLevel reads a slog level name ("debug", "INFO", "warn+2") or "".
func ParseLevel(s string) (slog.Level, error) {
	var lvl slog.Level
	if strings.TrimSpace(s) == "" {
		return slog.LevelInfo, nil
	}
	if err := lvl.UnmarshalText([]byte(strings.TrimSpace(s))); err != nil {
		return 0, fmt.Errorf("telemetry: log level %q: use debug, info, warn or error", s)
	}
	return lvl, nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// IsSecretKey reports whether an attribute or map key names something whose
// value must never be logged (redact.Key: a sensitive name of the shared
// list, or a key that looks like a secret, identity included).
func IsSecretKey(key string) bool { return redact.Key(key) }

// NewRedactingHandler wraps inner so that attributes with a secret-looking
// key (IsSecretKey), and such keys inside logged maps (headers), have their
// values replaced by "[redacted]" — in records, in With attributes and in
// groups. It also adds trace_id and span_id when the record's context
// carries a valid span, so every line about a message can be joined with its
// trace.
func NewRedactingHandler(inner slog.Handler) slog.Handler {
	return &redactingHandler{inner: inner}
}

type redactingHandler struct {
	inner slog.Handler
	// withTrace is set once a With already carries trace_id, so Handle does
	// not add a second one.
	withTrace bool
}

func (h *redactingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *redactingHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	hasTrace := h.withTrace
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == LogKeyTraceID {
			hasTrace = true
		}
		out.AddAttrs(redactAttr(a))
		return true
	})
	if !hasTrace {
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			out.AddAttrs(
				slog.String(LogKeyTraceID, sc.TraceID().String()),
				slog.String(LogKeySpanID, sc.SpanID().String()),
			)
		}
	}
	return h.inner.Handle(ctx, out)
}

func (h *redactingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(attrs))
	withTrace := h.withTrace
	for i, a := range attrs {
		if a.Key == LogKeyTraceID {
			withTrace = true
		}
		red[i] = redactAttr(a)
	}
	return &redactingHandler{inner: h.inner.WithAttrs(red), withTrace: withTrace}
}

func (h *redactingHandler) WithGroup(name string) slog.Handler {
	return &redactingHandler{inner: h.inner.WithGroup(name), withTrace: h.withTrace}
}

// maxRedactDepth bounds recursion into nested groups and maps.
const maxRedactDepth = 8

func redactAttr(a slog.Attr) slog.Attr { return redactAttrDepth(a, 0) }

func redactAttrDepth(a slog.Attr, depth int) slog.Attr {
	if IsSecretKey(a.Key) {
		return slog.String(a.Key, wire.Redacted)
	}
	v := a.Value.Resolve() // LogValuer first: it may produce a group
	if v.Kind() == slog.KindAny && isIdentity(v.Any()) {
		return slog.String(a.Key, wire.Redacted)
	}
	switch v.Kind() {
	case slog.KindGroup:
		if depth >= maxRedactDepth {
			return slog.String(a.Key, wire.Redacted)
		}
		members := v.Group()
		red := make([]slog.Attr, len(members))
		for i, m := range members {
			red[i] = redactAttrDepth(m, depth+1)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(red...)}
	case slog.KindAny:
		if m, ok := redactMap(v.Any(), depth); ok {
			return slog.Any(a.Key, m)
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

// isIdentity: a user's identity credentials (context.identity: access and
// refresh tokens), or a context carrying them, under whatever key. Their
// JSON is not redacted (plugins.IdentityCredentials), so a JSON handler
// would print the tokens.
func isIdentity(x any) bool {
	switch c := x.(type) {
	case plugins.IdentityCredentials, *plugins.IdentityCredentials:
		return true
	case plugins.PluginContext:
		return c.Identity != nil
	case *plugins.PluginContext:
		return c != nil && c.Identity != nil
	}
	return false
}

// redactMap copies a map with string keys (headers: map[string]string,
// http.Header, nats.Header, map[string]any) with secret values replaced.
// ok=false: not such a map, log it as it is.
func redactMap(x any, depth int) (map[string]any, bool) {
	rv := reflect.ValueOf(x)
	if rv.Kind() != reflect.Map || rv.Type().Key().Kind() != reflect.String {
		return nil, false
	}
	if rv.IsNil() {
		return nil, false
	}
	out := make(map[string]any, rv.Len())
	for _, k := range rv.MapKeys() {
		name := k.String()
		if IsSecretKey(name) || depth >= maxRedactDepth {
			out[name] = wire.Redacted
			continue
		}
		val := rv.MapIndex(k).Interface()
		if isIdentity(val) {
			out[name] = wire.Redacted
			continue
		}
		if nested, ok := redactMap(val, depth+1); ok {
			out[name] = nested
		} else {
			out[name] = val
		}
	}
	return out, true
}
