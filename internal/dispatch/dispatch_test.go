package dispatch_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/dispatch"
	"github.com/aweber-imbi/imbi-worker/internal/dispatch/dispatchtest"
	"github.com/aweber-imbi/imbi-worker/plugins"
	"github.com/aweber-imbi/imbi-worker/wire"
)

type fakeCreds struct {
	creds plugins.Credentials
	err   error
	got   []credCall
}

type credCall struct {
	PluginID, ThirdPartyService string
	Manifest                    plugins.PluginManifest
}

func (f *fakeCreds) Credentials(_ context.Context, m plugins.PluginManifest, pluginID, service string) (plugins.Credentials, error) {
	f.got = append(f.got, credCall{pluginID, service, m})
	return f.creds, f.err
}

type setup struct {
	rec  *dispatchtest.Recorder
	disp *dispatch.Dispatcher
}

func newSetup(t testing.TB, creds dispatch.CredentialSource) setup {
	t.Helper()
	rec := dispatchtest.NewRecorder()
	reg, err := dispatchtest.Registry(
		&dispatchtest.Plugin{Slug: "test", Rec: rec},
		&dispatchtest.Plugin{Slug: "withcreds", Rec: rec, Credentials: []plugins.CredentialField{{Name: "token", Label: "Token", Required: true}}},
		&dispatchtest.Plugin{Slug: "optcreds", Rec: rec, Credentials: []plugins.CredentialField{{Name: "token", Label: "Token", Required: false}}},
		&dispatchtest.Plugin{Slug: "slow", Rec: rec, Timeout: 1500 * time.Millisecond},
	)
	require.NoError(t, err)
	d := &dispatch.Dispatcher{Registry: reg, DefaultTimeout: 200 * time.Millisecond, AbandonGrace: 50 * time.Millisecond}
	if creds != nil {
		d.Credentials = creds
	}
	return setup{rec: rec, disp: d}
}

func message(handler, subject, config string) *dispatch.Request {
	m := &dispatch.Request{Handler: handler, Subject: subject, PluginID: "pl-1"}
	if config != "" {
		m.HandlerConfig = json.RawMessage(config)
	}
	m.Event.ThirdPartyService = "github"
	m.Event.Payload = map[string]any{"id": "evt-1"}
	return m
}

// TestDispatchOutcomes: one row per line of the wire-contract §4 table
// that dispatch decides (decode rows are the envelope package's).
func TestDispatchOutcomes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, handler, subject, config string
		class                          dispatch.Class
		reason                         wire.Reason
		ran                            bool
		retryAfter                     time.Duration
	}{
		{name: "success", handler: "test#ok", class: dispatch.Success, ran: true},
		{name: "legacy handler", handler: "test:ok", class: dispatch.Success, ran: true},
		{name: "subject equals handler", handler: "test#ok", subject: "test#ok", class: dispatch.Success, ran: true},
		{name: "legacy subject equals handler", handler: "test#ok", subject: "test:ok", class: dispatch.Success, ran: true},
		{name: "bad handler", handler: "Test#OK", class: dispatch.Permanent, reason: wire.ReasonInvalidHandler},
		{name: "empty handler", handler: "", class: dispatch.Permanent, reason: wire.ReasonInvalidHandler},
		{name: "subject mismatch", handler: "test#ok", subject: "test#fail", class: dispatch.Permanent, reason: wire.ReasonInvalidHandler},
		{name: "bad subject", handler: "test#ok", subject: "not a handler", class: dispatch.Permanent, reason: wire.ReasonInvalidHandler},
		{name: "unknown plugin", handler: "nope#ok", class: dispatch.Permanent, reason: wire.ReasonUnknownHandler},
		{name: "not a webhook plugin", handler: "logsonly#ok", class: dispatch.Permanent, reason: wire.ReasonUnknownHandler},
		{name: "unknown action", handler: "test#nope", class: dispatch.Permanent, reason: wire.ReasonUnknownHandler},
		{name: "config fails schema", handler: "test#strict", config: `{"label": ""}`, class: dispatch.Permanent, reason: wire.ReasonInvalidConfig},
		{name: "config missing required", handler: "test#strict", class: dispatch.Permanent, reason: wire.ReasonInvalidConfig},
		{name: "config as JSON string", handler: "test#strict", config: `"{\"label\": \"x\"}"`, class: dispatch.Success, ran: true},
		{name: "config not JSON string", handler: "test#strict", config: `"label"`, class: dispatch.Permanent, reason: wire.ReasonInvalidConfig},
		{name: "ConfigError from action", handler: "test#bad_config", class: dispatch.Permanent, reason: wire.ReasonInvalidConfig, ran: true},
		{name: "credentials required, no store", handler: "withcreds#ok", class: dispatch.Permanent, reason: wire.ReasonCredentialsMissing},
		{name: "credentials optional, no store", handler: "optcreds#ok", class: dispatch.Success, ran: true},
		{name: "CredentialsMissing from action", handler: "test#creds_missing", class: dispatch.Permanent, reason: wire.ReasonCredentialsMissing, ran: true},
		{name: "PluginTimeoutError", handler: "test#timeout_error", class: dispatch.Retryable, reason: wire.ReasonTimeout, ran: true},
		{name: "deadline exceeded (ctx honoured)", handler: "test#sleep", config: `{"sleep_ms": 5000}`, class: dispatch.Retryable, reason: wire.ReasonTimeout, ran: true},
		{name: "descriptor timeout wins over default", handler: "slow#sleep", config: `{"sleep_ms": 600}`, class: dispatch.Success, ran: true},
		{name: "descriptor timeout expires", handler: "slow#sleep", config: `{"sleep_ms": 60000}`, class: dispatch.Retryable, reason: wire.ReasonTimeout, ran: true},
		{name: "within default timeout", handler: "test#sleep", config: `{"sleep_ms": 10}`, class: dispatch.Success, ran: true},
		{name: "PluginUnavailableError", handler: "test#unavailable", class: dispatch.Retryable, reason: wire.ReasonUnavailable, ran: true},
		{name: "rate limited", handler: "test#rate_limited", config: `{"retry_after_ms": 1500}`, class: dispatch.Retryable, reason: wire.ReasonRateLimited, ran: true, retryAfter: 1500 * time.Millisecond},
		{name: "panic", handler: "test#panic", class: dispatch.Permanent, reason: wire.ReasonPanic, ran: true},
		{name: "config Validate panics", handler: "test#validate_panic", class: dispatch.Permanent, reason: wire.ReasonPanic},
		{name: "permanent error", handler: "test#permanent", class: dispatch.Permanent, reason: wire.ReasonActionFailed, ran: true},
		{name: "other error", handler: "test#fail", class: dispatch.Retryable, reason: wire.ReasonActionFailed, ran: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newSetup(t, nil)
			res := s.disp.Dispatch(context.Background(), message(tt.handler, tt.subject, tt.config))
			require.Equal(t, tt.class, res.Class, "result: %+v", res)
			require.Equal(t, tt.reason, res.Reason, res.ErrorText)
			require.Equal(t, tt.ran, res.Ran)
			require.Equal(t, tt.ran, s.rec.Calls("evt-1") == 1)
			require.Equal(t, tt.retryAfter, res.RetryAfter)
			if tt.class == dispatch.Success {
				require.NoError(t, res.Err)
				require.Empty(t, res.ErrorText)
			} else {
				require.Error(t, res.Err)
				require.NotEmpty(t, res.ErrorText)
			}
			if tt.reason == wire.ReasonTimeout {
				require.True(t, res.TimedOut)
			}
		})
	}
}

func TestCredentialsMissingText(t *testing.T) {
	t.Parallel()
	s := newSetup(t, nil)
	res := s.disp.Dispatch(context.Background(), message("withcreds#ok", "", ""))
	require.Equal(t, wire.ReasonCredentialsMissing, res.Reason)
	require.Contains(t, res.ErrorText, "no credential store configured")
	require.Contains(t, res.ErrorText, "token")
}

func TestCredentialSource(t *testing.T) {
	t.Parallel()
	t.Run("loaded and passed, request names the plugin", func(t *testing.T) {
		src := &fakeCreds{creds: plugins.Credentials{"token": "s3cr3t-value"}}
		s := newSetup(t, src)
		res := s.disp.Dispatch(context.Background(), message("withcreds#ok", "", ""))
		require.Equal(t, dispatch.Success, res.Class, res.ErrorText)
		require.Equal(t, "s3cr3t-value", s.rec.LastCredentials()["token"])
		require.Len(t, src.got, 1)
		require.Equal(t, "pl-1", src.got[0].PluginID)
		require.Equal(t, "github", src.got[0].ThirdPartyService)
		require.Equal(t, "withcreds", src.got[0].Manifest.Slug)
	})
	t.Run("not loaded when the manifest declares none", func(t *testing.T) {
		src := &fakeCreds{}
		s := newSetup(t, src)
		require.Equal(t, dispatch.Success, s.disp.Dispatch(context.Background(), message("test#ok", "", "")).Class)
		require.Empty(t, src.got)
	})
	for _, tt := range []struct {
		err    error
		class  dispatch.Class
		reason wire.Reason
	}{
		{&plugins.PluginCredentialsMissing{Message: "no token linked"}, dispatch.Permanent, wire.ReasonCredentialsMissing},
		{&plugins.PluginUnavailableError{Message: "neo4j down"}, dispatch.Retryable, wire.ReasonUnavailable},
	} {
		t.Run("source error "+string(tt.reason), func(t *testing.T) {
			s := newSetup(t, &fakeCreds{err: tt.err})
			res := s.disp.Dispatch(context.Background(), message("withcreds#ok", "", ""))
			require.Equal(t, tt.class, res.Class)
			require.Equal(t, tt.reason, res.Reason)
			require.False(t, res.Ran)
		})
	}
}

func TestAbandonedAction(t *testing.T) {
	t.Parallel()
	s := newSetup(t, nil)
	start := time.Now()
	res := s.disp.Dispatch(context.Background(), message("test#ignore_ctx", "", `{"sleep_ms": 5000}`))
	elapsed := time.Since(start)
	require.Equal(t, wire.ReasonTimeout, res.Reason)
	require.True(t, res.Abandoned)
	require.True(t, res.TimedOut)
	// deadline 200 ms + grace 50 ms, far below the action's 5 s
	require.Less(t, elapsed, 2500*time.Millisecond)
}

func TestCallerCancellationIsNotATimeout(t *testing.T) {
	t.Parallel()
	s := newSetup(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	res := s.disp.Dispatch(ctx, message("test#sleep", "", `{"sleep_ms": 5000}`))
	require.Equal(t, dispatch.Retryable, res.Class)
	require.True(t, errors.Is(res.Err, context.Canceled), res.ErrorText)
	require.False(t, res.TimedOut)
}

func TestErrorTextRedacted(t *testing.T) {
	t.Parallel()
	t.Run("token patterns", func(t *testing.T) {
		s := newSetup(t, nil)
		res := s.disp.Dispatch(context.Background(), message("test#leak", "", `{"secret": "ghp_abcdef123456"}`))
		require.NotContains(t, res.ErrorText, "ghp_abcdef123456")
		require.Contains(t, res.ErrorText, wire.Redacted)
		require.Contains(t, res.Err.Error(), "ghp_abcdef123456", "the raw error is kept for the caller")
	})
	t.Run("credential values", func(t *testing.T) {
		s := newSetup(t, &fakeCreds{creds: plugins.Credentials{"token": "hunter2hunter2"}})
		m := message("withcreds#leak_creds", "", "")
		res := s.disp.Dispatch(context.Background(), m)
		require.Equal(t, wire.ReasonActionFailed, res.Reason)
		require.NotContains(t, res.ErrorText, "hunter2hunter2")
	})
	t.Run("truncated to 1 KiB on a rune boundary", func(t *testing.T) {
		long := strings.Repeat("é", 2000)
		got := dispatch.RedactText(long, nil)
		require.LessOrEqual(t, len(got), wire.DLQErrorMaxBytes)
		require.True(t, strings.HasSuffix(got, "…"))
		require.NotContains(t, got, "\uFFFD")
	})
}

func TestClassifyPrecedence(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		err    error
		class  dispatch.Class
		reason wire.Reason
	}{
		{"permanent wraps unavailable", plugins.Permanent(&plugins.PluginUnavailableError{Message: "x"}), dispatch.Permanent, wire.ReasonActionFailed},
		{"wrapped rate limit", errors.Join(errors.New("ctx"), plugins.RetryAfter(nil, time.Second)), dispatch.Retryable, wire.ReasonRateLimited},
		{"bare deadline", context.DeadlineExceeded, dispatch.Retryable, wire.ReasonTimeout},
		{"wrapped creds missing", errors.Join(errors.New("ctx"), &plugins.PluginCredentialsMissing{Message: "x"}), dispatch.Permanent, wire.ReasonCredentialsMissing},
		{"plain", errors.New("x"), dispatch.Retryable, wire.ReasonActionFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := dispatch.Classify("a#b", tt.err, nil)
			require.Equal(t, tt.class, res.Class)
			require.Equal(t, tt.reason, res.Reason)
		})
	}
}

func TestKnownHandler(t *testing.T) {
	t.Parallel()
	s := newSetup(t, nil)
	h, ok := s.disp.KnownHandler("test:ok")
	require.True(t, ok)
	require.Equal(t, "test#ok", h)
	for _, raw := range []string{"", "nope#ok", "test#nope", "logsonly#x", "BAD"} {
		_, ok := s.disp.KnownHandler(raw)
		require.False(t, ok, raw)
	}
}
