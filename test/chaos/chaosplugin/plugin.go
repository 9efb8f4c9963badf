// Package chaosplugin is a test-only webhook plugin for the reliability
// suites (test/chaos). It is compiled into the in-process tests and into
// the test binary test/chaos/cmd/imbi-worker-chaos, never into the shipped
// imbi-worker.
//
// Its actions either record the CloudEvent id they ran for (so a suite can
// count lost and duplicated effects) or misbehave on purpose: sleep past
// their deadline, ignore their context, panic, or fail with a message that
// carries a secret.
//
// The CloudEvent id reaches the action through the event payload: the
// suites publish every event with payload {"id": <ce id>}, because the SDK
// hands actions the event, not the CloudEvent envelope.
package chaosplugin

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aweber-imbi/imbi-worker/plugins"
)

// Slugs of the two plugins. CredsSlug declares a required credential
// ("token"), so its actions exercise the worker's credential path.
const (
	Slug      = "chaos"
	CredsSlug = "chaos-creds"
)

// Action names.
const (
	ActionRecord    = "record"     // record the id, optionally after sleep_ms
	ActionSleep     = "sleep"      // sleep sleep_ms honouring ctx (times out)
	ActionIgnoreCtx = "ignore_ctx" // sleep sleep_ms ignoring ctx (abandoned)
	ActionPanic     = "panic"      // panic
	ActionFail      = "fail"       // return an error (message, + token for chaos-creds)
)

// ShortTimeout is the own deadline of the sleep and ignore_ctx actions, so
// the stuck-action tests do not wait for the 10 s default.
const ShortTimeout = 300 * time.Millisecond

// Recorder receives the effect of the record action: the CloudEvent id it
// ran for. Implementations must be safe for concurrent use.
type Recorder interface {
	Record(ctx context.Context, id string) error
}

// RecordConfig is the handler_config of every chaos action. Label is
// required so the poison corpus can violate the schema.
type RecordConfig struct {
	Label   string `json:"label" jsonschema:"minLength=1"`
	SleepMS int    `json:"sleep_ms,omitempty" jsonschema:"minimum=0,maximum=600000"`
	// Message is the error text of the fail action; "{token}" in it is
	// replaced by the plugin's token.
	Message string `json:"message,omitempty"`
	// Retryable makes the fail action's error retryable (plain error)
	// instead of permanent.
	Retryable bool `json:"retryable,omitempty"`
	// Step, when set, makes record write "<id>/<step>@<unix nanos>" (the
	// chain suites tell the steps of one chain, which share the payload
	// id, apart and check their order across processes).
	Step string `json:"step,omitempty"`
	// KillAfterMarker, with a MarkerKiller set (WithKiller), is a
	// CloudEvent id: record SIGKILLs the process once that id's done-marker
	// is stored (before the ack), once per id.
	KillAfterMarker string `json:"kill_after_marker,omitempty"`
	// HoldWhileKillPending, with a MarkerKiller set, makes record wait for
	// its context, recording nothing, while this process has a kill armed
	// (KillAfterMarker): the process is about to die, and an effect
	// recorded now could lose its done-marker to the kill and run again
	// after the restart — the at-least-once window of every kill, not the
	// one a suite aims its kill at. A restarted process records at once.
	HoldWhileKillPending bool `json:"hold_while_kill_pending,omitempty"`
}

// Plugin is the chaos webhook plugin. Build it with New or NewCreds.
type Plugin struct {
	slug      string
	withCreds bool
	rec       Recorder
	killer    *MarkerKiller
}

// WithKiller sets the killer of RecordConfig.KillAfterMarker.
func (p *Plugin) WithKiller(k *MarkerKiller) *Plugin { p.killer = k; return p }

// New returns the "chaos" plugin (no credentials) recording into rec.
func New(rec Recorder) *Plugin { return &Plugin{slug: Slug, rec: rec} }

// NewCreds returns the "chaos-creds" plugin: its manifest declares a
// required credential "token" and its actions fail without it.
func NewCreds(rec Recorder) *Plugin { return &Plugin{slug: CredsSlug, withCreds: true, rec: rec} }

// Manifest implements plugins.Plugin.
func (p *Plugin) Manifest() plugins.PluginManifest {
	desc := "Test-only plugin of the reliability suites; never shipped."
	m := plugins.NewManifest(p.slug, "Chaos ("+p.slug+")", plugins.TypeWebhook)
	m.Description = &desc
	if p.withCreds {
		m.Credentials = []plugins.CredentialField{{Name: "token", Label: "API token", Required: true}}
	}
	return m
}

// Actions implements plugins.WebhookActionPlugin.
func (p *Plugin) Actions() ([]plugins.ActionDescriptor, error) {
	var out []plugins.ActionDescriptor
	for _, spec := range []struct {
		name string
		fn   plugins.ActionFunc[RecordConfig]
		opts []plugins.ActionOption
	}{
		{ActionRecord, p.record, nil},
		{ActionSleep, p.sleep, []plugins.ActionOption{plugins.WithTimeout(ShortTimeout)}},
		{ActionIgnoreCtx, p.ignoreCtx, []plugins.ActionOption{plugins.WithTimeout(ShortTimeout)}},
		{ActionPanic, p.panic, nil},
		{ActionFail, p.fail, nil},
	} {
		d, err := plugins.NewAction(spec.name, "Chaos "+spec.name, spec.fn, spec.opts...)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// EventID is the CloudEvent id the suites put in the payload.
func EventID(ev plugins.Event) (string, error) {
	id, _ := ev.Payload["id"].(string)
	if id == "" {
		return "", plugins.Permanent(errors.New("chaos: event payload has no string \"id\""))
	}
	return id, nil
}

func (p *Plugin) checkCreds(creds plugins.Credentials) error {
	if p.withCreds && creds["token"] == "" {
		// The worker must not run us without the required credential.
		return plugins.Permanent(errors.New("chaos-creds: ran without the required token"))
	}
	return nil
}

func (p *Plugin) record(ctx context.Context, in plugins.ActionInput[RecordConfig]) error {
	if err := p.checkCreds(in.Credentials); err != nil {
		return err
	}
	id, err := EventID(in.Event)
	if err != nil {
		return err
	}
	if in.Config.HoldWhileKillPending && p.killer != nil && p.killer.pending() {
		<-ctx.Done() // the kill comes first; else the deadline, and a retry
		return ctx.Err()
	}
	if d := time.Duration(in.Config.SleepMS) * time.Millisecond; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	if in.Config.Step != "" {
		id += "/" + in.Config.Step + "@" + strconv.FormatInt(time.Now().UnixNano(), 10)
	}
	if err := p.rec.Record(ctx, id); err != nil {
		return err
	}
	if in.Config.KillAfterMarker != "" && p.killer != nil {
		return p.killer.arm(in.Config.KillAfterMarker)
	}
	return nil
}

func (p *Plugin) sleep(ctx context.Context, in plugins.ActionInput[RecordConfig]) error {
	t := time.NewTimer(time.Duration(in.Config.SleepMS) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	id, err := EventID(in.Event)
	if err != nil {
		return err
	}
	return p.rec.Record(ctx, id)
}

// ignoreCtx is the badly written action: it never looks at ctx. The worker
// has to give up on it at the deadline and free the slot.
func (p *Plugin) ignoreCtx(_ context.Context, in plugins.ActionInput[RecordConfig]) error {
	time.Sleep(time.Duration(in.Config.SleepMS) * time.Millisecond)
	return nil
}

// panic panics with a value that carries the token when there is one: a
// panic message is an error text like any other.
func (p *Plugin) panic(_ context.Context, in plugins.ActionInput[RecordConfig]) error {
	msg := fmt.Sprintf("chaos: deliberate panic (%s)", in.Config.Label)
	if tok := in.Credentials["token"]; tok != "" {
		msg += " with token " + tok
	}
	panic(msg)
}

// fail returns an error whose text carries the plugin's token when it has
// one: an action's error may contain anything, and the worker must redact
// the credentials it loaded before logging or dead-lettering the text.
func (p *Plugin) fail(_ context.Context, in plugins.ActionInput[RecordConfig]) error {
	msg := in.Config.Message
	if msg == "" {
		msg = "chaos: deliberate failure"
	}
	if tok := in.Credentials["token"]; tok != "" {
		// "{token}" in the configured message is replaced by the secret, so
		// a test can put it in any position (e.g. after "Bearer ").
		if strings.Contains(msg, "{token}") {
			msg = strings.ReplaceAll(msg, "{token}", tok)
		} else {
			msg += " (token " + tok + " rejected)"
		}
	}
	if in.Config.Retryable {
		return errors.New(msg)
	}
	return plugins.Permanent(errors.New(msg))
}
