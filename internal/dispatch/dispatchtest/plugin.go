// Package dispatchtest is a webhook plugin whose actions produce every
// outcome of wire-contract §4 on demand, for the dispatch, worker and
// benchmark code. Not for production binaries.
package dispatchtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aweber-imbi/imbi-worker/internal/pluginreg"
	"github.com/aweber-imbi/imbi-worker/internal/registry"
	"github.com/aweber-imbi/imbi-worker/plugins"
)

// Config is the handler_config of every action but "strict".
type Config struct {
	// SleepMS: how long "sleep" and "ignore_ctx" take.
	SleepMS int `json:"sleep_ms,omitempty" jsonschema:"minimum=0"`
	// FailTimes: "flaky" fails this many calls per key, then succeeds.
	FailTimes int `json:"fail_times,omitempty" jsonschema:"minimum=0"`
	// RetryAfterMS: the delay "rate_limited" asks for.
	RetryAfterMS int `json:"retry_after_ms,omitempty" jsonschema:"minimum=0"`
	// Secret is put into the error text of "leak" to test redaction.
	Secret string `json:"secret,omitempty"`
}

// StrictConfig has a required field, for invalid_config.
type StrictConfig struct {
	Label string `json:"label" jsonschema:"minLength=1"`
}

// PanickyConfig's Validate panics: a plugin bug the worker must survive
// (security issue 12 §5).
type PanickyConfig struct {
	X string `json:"x,omitempty"`
}

// Validate panics.
func (PanickyConfig) Validate() error { panic("validate exploded") }

// Recorder counts calls per key (event.payload.id, else the external
// identifier). Safe for concurrent use.
type Recorder struct {
	mu    sync.Mutex
	calls map[string]int
	times map[string][]time.Time
	last  plugins.Credentials
	// sleeping and peakSleeping count "sleep" actions running at once.
	sleeping, peakSleeping int
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder {
	return &Recorder{calls: map[string]int{}, times: map[string][]time.Time{}}
}

func (r *Recorder) add(in plugins.Invocation) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := Key(in.Event, in.ExternalIdentifier)
	r.calls[k]++
	r.times[k] = append(r.times[k], time.Now())
	r.last = in.Credentials
	return r.calls[k]
}

// Key is the recorder key of an event.
func Key(ev plugins.Event, external string) string {
	if id, ok := ev.Payload["id"].(string); ok && id != "" {
		return id
	}
	return external
}

// Calls returns how many times key ran.
func (r *Recorder) Calls(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[key]
}

// Times returns when each call of key started.
func (r *Recorder) Times(key string) []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.times[key]...)
}

// PeakSleeping is the most "sleep" actions that ran at the same time.
func (r *Recorder) PeakSleeping() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.peakSleeping
}

func (r *Recorder) sleepStarted() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sleeping++
	r.peakSleeping = max(r.peakSleeping, r.sleeping)
}

func (r *Recorder) sleepEnded() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sleeping--
}

// Snapshot copies the call counts.
func (r *Recorder) Snapshot() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.calls))
	for k, v := range r.calls {
		out[k] = v
	}
	return out
}

// LastCredentials returns the credentials of the last call.
func (r *Recorder) LastCredentials() plugins.Credentials {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// Plugin is the test webhook plugin.
type Plugin struct {
	Slug        string
	Credentials []plugins.CredentialField
	Rec         *Recorder
	// Timeout is the descriptor timeout of "sleep" and "ignore_ctx" (0:
	// host default).
	Timeout time.Duration
}

// Manifest implements plugins.Plugin.
func (p *Plugin) Manifest() plugins.PluginManifest {
	return plugins.PluginManifest{Slug: p.Slug, Name: "dispatch test " + p.Slug, PluginType: plugins.TypeWebhook,
		AuthType: plugins.AuthAPIToken, APIVersion: 1, Credentials: p.Credentials}
}

// Actions implements plugins.WebhookActionPlugin.
func (p *Plugin) Actions() ([]plugins.ActionDescriptor, error) {
	type in = plugins.ActionInput[Config]
	inv := func(i in) plugins.Invocation {
		return plugins.Invocation{Context: i.Context, Credentials: i.Credentials, ExternalIdentifier: i.ExternalIdentifier, Config: i.Config, Event: i.Event}
	}
	act := func(name string, fn func(ctx context.Context, i in, n int) error, opts ...plugins.ActionOption) plugins.ActionDescriptor {
		return plugins.MustAction(name, name, func(ctx context.Context, i in) error {
			return fn(ctx, i, p.Rec.add(inv(i)))
		}, opts...)
	}
	var timeoutOpt []plugins.ActionOption
	if p.Timeout > 0 {
		timeoutOpt = append(timeoutOpt, plugins.WithTimeout(p.Timeout))
	}
	return []plugins.ActionDescriptor{
		act("ok", func(context.Context, in, int) error { return nil }),
		act("fail", func(context.Context, in, int) error { return errors.New("upstream said no") }),
		act("permanent", func(context.Context, in, int) error { return plugins.Permanent(errors.New("will never work")) }),
		act("rate_limited", func(_ context.Context, i in, _ int) error {
			return plugins.RetryAfter(errors.New("slow down"), time.Duration(i.Config.RetryAfterMS)*time.Millisecond)
		}),
		act("timeout_error", func(context.Context, in, int) error {
			return &plugins.PluginTimeoutError{Message: "upstream timed out"}
		}),
		act("unavailable", func(context.Context, in, int) error {
			return &plugins.PluginUnavailableError{Message: "upstream unavailable"}
		}),
		act("creds_missing", func(context.Context, in, int) error {
			return &plugins.PluginCredentialsMissing{Message: "token not linked"}
		}),
		act("bad_config", func(context.Context, in, int) error {
			return &plugins.ConfigError{Action: "bad_config", Err: errors.New("repository not found in event")}
		}),
		act("panic", func(context.Context, in, int) error { panic("boom") }),
		act("leak", func(_ context.Context, i in, _ int) error {
			return fmt.Errorf("request failed: Authorization: Bearer %s (token=%s)", i.Config.Secret, i.Config.Secret)
		}),
		act("leak_creds", func(_ context.Context, i in, _ int) error {
			return fmt.Errorf("upstream rejected %s", i.Credentials["token"])
		}),
		act("sleep", func(ctx context.Context, i in, _ int) error {
			p.Rec.sleepStarted()
			defer p.Rec.sleepEnded()
			select {
			case <-time.After(time.Duration(i.Config.SleepMS) * time.Millisecond):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}, timeoutOpt...),
		act("ignore_ctx", func(_ context.Context, i in, _ int) error {
			time.Sleep(time.Duration(i.Config.SleepMS) * time.Millisecond)
			return nil
		}, timeoutOpt...),
		act("flaky", func(_ context.Context, i in, n int) error {
			if n <= i.Config.FailTimes {
				return fmt.Errorf("flaky failure %d of %d", n, i.Config.FailTimes)
			}
			return nil
		}),
		plugins.MustAction("validate_panic", "validate_panic", func(_ context.Context, i plugins.ActionInput[PanickyConfig]) error {
			p.Rec.add(plugins.Invocation{Credentials: i.Credentials, ExternalIdentifier: i.ExternalIdentifier, Event: i.Event})
			return nil
		}),
		plugins.MustAction("strict", "strict", func(_ context.Context, i plugins.ActionInput[StrictConfig]) error {
			p.Rec.add(plugins.Invocation{Credentials: i.Credentials, ExternalIdentifier: i.ExternalIdentifier, Event: i.Event})
			return nil
		}),
	}, nil
}

// notWebhook is a registered plugin of another kind (lifecycle).
type notWebhook struct{}

func (notWebhook) Manifest() plugins.PluginManifest {
	return plugins.PluginManifest{Slug: "logsonly", Name: "lifecycle only", PluginType: plugins.TypeLifecycle, APIVersion: 1}
}

func (notWebhook) OnProjectArchived(context.Context, plugins.PluginContext, plugins.Credentials) (plugins.LifecycleResult, error) {
	return plugins.LifecycleResult{}, nil
}

// Registry loads the given plugins plus a non-webhook plugin "logsonly".
func Registry(ps ...plugins.Plugin) (*registry.Registry, error) {
	regs := []pluginreg.Registration{{Name: "logsonly", Load: func() (any, error) { return notWebhook{}, nil }}}
	for _, p := range ps {
		regs = append(regs, pluginreg.Registration{Name: p.Manifest().Slug, Load: func() (any, error) { return p, nil }})
	}
	r := registry.New(func() []pluginreg.Registration { return regs })
	res, err := r.Load()
	if err != nil {
		return nil, err
	}
	if len(res.Errors) > 0 {
		return nil, fmt.Errorf("registry load errors: %v", res.Errors)
	}
	return r, nil
}
