package remote

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/dispatch"
	"github.com/aweber-imbi/imbi-worker/internal/registry"
	"github.com/aweber-imbi/imbi-worker/plugins"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// Each reply class becomes the error a Go action would return, so
// dispatch.Classify settles it as §4 says.
func TestMapReply(t *testing.T) {
	retryAt := float64(time.Now().Add(3*time.Second).UnixNano()) / 1e9
	cases := []struct {
		name   string
		reply  map[string]any
		header nats.Header
		class  dispatch.Class
		reason wire.Reason
	}{
		{"ok", map[string]any{"status": "ok"}, nil, dispatch.Success, ""},
		{"credentials", map[string]any{"status": "error", "class": "credentials_missing"}, nil, dispatch.Permanent, wire.ReasonCredentialsMissing},
		{"config", map[string]any{"status": "error", "class": "invalid_config"}, nil, dispatch.Permanent, wire.ReasonInvalidConfig},
		{"timeout", map[string]any{"status": "error", "class": "timeout"}, nil, dispatch.Retryable, wire.ReasonTimeout},
		{"unavailable", map[string]any{"status": "error", "class": "unavailable"}, nil, dispatch.Retryable, wire.ReasonUnavailable},
		{"unknown-on-host", map[string]any{"status": "error", "class": "unknown_handler"}, nil, dispatch.Retryable, wire.ReasonUnavailable},
		{"rate-limited", map[string]any{"status": "error", "class": "rate_limited", "retry_at": retryAt}, nil, dispatch.Retryable, wire.ReasonRateLimited},
		{"invalid-event", map[string]any{"status": "error", "class": "invalid_event"}, nil, dispatch.Permanent, wire.ReasonActionFailed},
		{"action-failed", map[string]any{"status": "error", "class": "action_failed"}, nil, dispatch.Retryable, wire.ReasonActionFailed},
		{"unknown-class", map[string]any{"status": "error", "class": "weird"}, nil, dispatch.Retryable, wire.ReasonActionFailed},
		{"service-error", map[string]any{}, nats.Header{"Nats-Service-Error-Code": {"500"}}, dispatch.Retryable, wire.ReasonUnavailable},
	}
	s := New(Config{})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body, err := json.Marshal(c.reply)
			require.NoError(t, err)
			err = s.mapReply("p#a", "a", &nats.Msg{Data: body, Header: c.header})
			res := dispatch.Classify("p#a", err, nil)
			require.Equal(t, c.class, res.Class, "%v", err)
			require.Equal(t, c.reason, res.Reason)
			if c.reason == wire.ReasonRateLimited {
				require.InDelta(t, 3*time.Second, res.RetryAfter, float64(500*time.Millisecond))
			}
		})
	}
}

func TestTimeoutCap(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	cases := []struct {
		cap  time.Duration
		secs *float64
		want time.Duration
	}{
		{0, nil, 0},
		{0, f(2), 2 * time.Second},
		{time.Second, f(2), time.Second},
		{time.Second, nil, time.Second},
		{5 * time.Second, f(2), 2 * time.Second},
	}
	for _, c := range cases {
		require.Equal(t, c.want, New(Config{TimeoutCap: c.cap}).timeout(c.secs))
	}
}

// A catalog registers its actions (schema-validated config); a later
// catalog without an action removes it; in ModeOn an unknown plugin is
// unavailable until the first catalog.
func TestApplyAndGate(t *testing.T) {
	s := New(Config{Mode: ModeOn})
	reg := registry.New(s.Registrations)
	_, err := reg.Load()
	require.NoError(t, err)
	s.reg.Store(reg)
	gate := s.Registry(reg)
	_, err = gate.Get("py")
	require.True(t, errors.Is(err, plugins.ErrPluginUnavailable))

	manifest := `{"slug":"py","name":"Py","plugin_type":"webhook"}`
	schema := `{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"]}`
	entry := func(name string) string {
		return `{"handler":"py#` + name + `","label":"L","config_schema":` + schema + `,"manifest":` + manifest + `,"package":"pkg","version":"1.0"}`
	}
	changed, err := s.apply([]byte("[" + entry("a") + "," + entry("b") + "]"))
	require.NoError(t, err)
	require.True(t, changed)
	e, err := gate.Get("py")
	require.NoError(t, err)
	require.Equal(t, "python:pkg", e.PackageName)
	a, ok := e.Action("a")
	require.True(t, ok)
	_, err = a.DecodeConfig(json.RawMessage(`{"n":"x"}`))
	require.ErrorAs(t, err, new(*plugins.ConfigError))
	_, err = a.DecodeConfig(json.RawMessage(`{"n":1}`))
	require.NoError(t, err)

	changed, err = s.apply([]byte("[" + entry("a") + "," + entry("b") + "]"))
	require.NoError(t, err)
	require.False(t, changed, "same catalog, no reload")
	_, err = s.apply([]byte("[" + entry("a") + "]"))
	require.NoError(t, err)
	e, err = gate.Get("py")
	require.NoError(t, err)
	_, ok = e.Action("b")
	require.False(t, ok, "removed action is gone")
	_, err = gate.Get("other")
	require.ErrorAs(t, err, new(*plugins.PluginNotFoundError), "after a catalog: unknown_handler")
}

func TestParseModeAndOff(t *testing.T) {
	for in, want := range map[string]Mode{"auto": ModeAuto, "ON": ModeOn, " off ": ModeOff} {
		m, err := ParseMode(in)
		require.NoError(t, err)
		require.Equal(t, want, m)
	}
	_, err := ParseMode("maybe")
	require.ErrorContains(t, err, "want auto, on or off")
	// off: no subscription, no request (a nil connection is never touched).
	s := New(Config{Mode: ModeOff})
	require.NoError(t, s.Start(t.Context(), nil, nil))
	require.False(t, s.Loaded())
}
