package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/aweber-imbi/imbi-worker/plugins"
)

const canary = "s3cr3t-CANARY-value"

func jsonLogger(t *testing.T, level string) (*slog.Logger, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	l, err := NewLogger(&buf, level, LogFormatJSON)
	require.NoError(t, err)
	return l, &buf
}

func decodeLine(t *testing.T, line []byte) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(line, &m), string(line))
	return m
}

func TestRedactingHandlerHidesSecrets(t *testing.T) {
	tests := []struct {
		name string
		log  func(l *slog.Logger)
		// path to the redacted value in the decoded JSON line
		path []string
	}{
		{"authorization attr", func(l *slog.Logger) { l.Info("m", "authorization", canary) }, []string{"authorization"}},
		{"Cookie any case", func(l *slog.Logger) { l.Info("m", "Cookie", canary) }, []string{"Cookie"}},
		{"sensitive header name", func(l *slog.Logger) { l.Info("m", "x-hub-signature-256", canary) }, []string{"x-hub-signature-256"}},
		{"token inside a key", func(l *slog.Logger) { l.Info("m", "github_token", canary) }, []string{"github_token"}},
		{"password", func(l *slog.Logger) { l.Info("m", "neo4j_password", canary) }, []string{"neo4j_password"}},
		{"secret", func(l *slog.Logger) { l.Info("m", "client_secret", canary) }, []string{"client_secret"}},
		{"credentials any value", func(l *slog.Logger) { l.Info("m", "credentials", map[string]string{"a": canary}) }, []string{"credentials"}},
		// context.identity (user access/refresh tokens), under any key.
		{"identity credentials", func(l *slog.Logger) {
			l.Info("m", "user", &plugins.IdentityCredentials{AccessToken: canary})
		}, []string{"user"}},
		{"context with identity", func(l *slog.Logger) {
			l.Info("m", "ctx", plugins.PluginContext{ProjectID: "p", Identity: &plugins.IdentityCredentials{AccessToken: canary}})
		}, []string{"ctx"}},
		{"identity in a map", func(l *slog.Logger) {
			l.Info("m", "m", map[string]any{"who": plugins.IdentityCredentials{AccessToken: canary}})
		}, []string{"m", "who"}},
		{"ce authorization header", func(l *slog.Logger) { l.Info("m", "ce-authorization", canary) }, []string{"ce-authorization"}},
		{"header map", func(l *slog.Logger) {
			l.Info("m", "headers", map[string]string{"Authorization": "Bearer " + canary, "x-github-event": "push"})
		}, []string{"headers", "Authorization"}},
		{"http.Header", func(l *slog.Logger) {
			l.Info("m", "headers", http.Header{"Cookie": {canary}})
		}, []string{"headers", "Cookie"}},
		{"nested map", func(l *slog.Logger) {
			l.Info("m", "event", map[string]any{"metadata": map[string]any{"headers": map[string]any{"x-gitlab-token": canary}}})
		}, []string{"event", "metadata", "headers", "x-gitlab-token"}},
		{"group member", func(l *slog.Logger) {
			l.Info("m", slog.Group("req", slog.String("proxy-authorization", canary)))
		}, []string{"req", "proxy-authorization"}},
		{"With attrs", func(l *slog.Logger) { l.With("api_key", canary).Info("m") }, []string{"api_key"}},
		{"WithGroup then attr", func(l *slog.Logger) { l.WithGroup("g").Info("m", "token", canary) }, []string{"g", "token"}},
		{"LogValuer resolving to a group", func(l *slog.Logger) {
			l.Info("m", "cfg", valuer{slog.GroupValue(slog.String("password", canary))})
		}, []string{"cfg", "password"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, buf := jsonLogger(t, "debug")
			tt.log(l)
			require.NotContains(t, buf.String(), canary)
			var v any = decodeLine(t, buf.Bytes())
			for _, k := range tt.path {
				m, ok := v.(map[string]any)
				require.True(t, ok, "%v at %q", v, k)
				v = m[k]
			}
			require.Equal(t, "[redacted]", v)
		})
	}
}

type valuer struct{ v slog.Value }

func (v valuer) LogValue() slog.Value { return v.v }

func TestRedactingHandlerKeepsOrdinaryAttrs(t *testing.T) {
	l, buf := jsonLogger(t, "info")
	l.Info("settled", "ce_id", "d-1.0", "handler", "github#create_issue", "attempt", 2,
		"headers", map[string]string{"x-github-event": "push"})
	m := decodeLine(t, buf.Bytes())
	require.Equal(t, "d-1.0", m["ce_id"])
	require.Equal(t, "github#create_issue", m["handler"])
	require.EqualValues(t, 2, m["attempt"])
	require.Equal(t, map[string]any{"x-github-event": "push"}, m["headers"])
}

// plugins.Credentials redacts itself; through the handler it stays hidden
// even under an innocent key.
func TestCredentialsValueStaysHidden(t *testing.T) {
	l, buf := jsonLogger(t, "info")
	l.Info("loaded", "c", plugins.Credentials{"api_token": canary})
	require.NotContains(t, buf.String(), canary)
}

func TestTraceIDAddedFromContext(t *testing.T) {
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled,
	}))

	l, buf := jsonLogger(t, "info")
	l.InfoContext(ctx, "with span")
	m := decodeLine(t, buf.Bytes())
	require.Equal(t, tid.String(), m[LogKeyTraceID])
	require.Equal(t, sid.String(), m[LogKeySpanID])

	buf.Reset()
	l.Info("no span")
	require.NotContains(t, decodeLine(t, buf.Bytes()), LogKeyTraceID)

	// An explicit trace_id is not duplicated.
	buf.Reset()
	l.With(LogKeyTraceID, "explicit").InfoContext(ctx, "explicit")
	require.Equal(t, 1, strings.Count(buf.String(), `"trace_id"`))
}

func TestNewLoggerLevelAndFormat(t *testing.T) {
	tests := []struct {
		level, format string
		debugShown    bool
		wantJSON      bool
		wantErr       bool
	}{
		{level: "", format: "", debugShown: false, wantJSON: true}, // a buffer is no terminal
		{level: "debug", format: "json", debugShown: true, wantJSON: true},
		{level: "WARN", format: "text", debugShown: false, wantJSON: false},
		{level: "info", format: "auto", debugShown: false, wantJSON: true},
		{level: "loud", format: "json", wantErr: true},
		{level: "info", format: "xml", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.level+"/"+tt.format, func(t *testing.T) {
			var buf bytes.Buffer
			l, err := NewLogger(&buf, tt.level, tt.format)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			l.Debug("dbg")
			require.Equal(t, tt.debugShown, buf.Len() > 0)
			l.Error("err")
			line := buf.Bytes()[bytes.LastIndexByte(buf.Bytes()[:buf.Len()-1], '\n')+1:]
			require.Equal(t, tt.wantJSON, json.Valid(line), string(line))
		})
	}
}

func TestIsSecretKey(t *testing.T) {
	for key, want := range map[string]bool{
		"authorization": true, "X-Hub-Signature": true, "set-cookie": true,
		"IMBI_AUTH_ENCRYPTION_KEY": false, "encryption_key_secret": true,
		"identity": true, "ce-authorization": true, "x_api_key": true,
		"ce_id": false, "handler": false, "attempt": false, "trace_id": false, "reason": false,
	} {
		require.Equal(t, want, IsSecretKey(key), key)
	}
}
