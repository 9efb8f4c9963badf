package plugins

import (
	"errors"
	"fmt"
	"time"
)

// The error types below mirror the Python library's exception classes
// (plugins-spec §8). Each carries the message the raiser chose; Error returns
// it unchanged so texts match Python. Every type also matches its own
// sentinel with errors.Is, e.g. errors.Is(err, plugins.ErrPluginTimeout).

// PluginNotFoundError: a slug is not registered. Message is the slug.
type PluginNotFoundError struct{ Message string }

func (e *PluginNotFoundError) Error() string { return e.Message }
func (e *PluginNotFoundError) Is(t error) bool {
	_, ok := t.(*PluginNotFoundError)
	return ok
}

// PluginUnavailableError: a plugin or its upstream cannot be reached now.
// The worker treats it as retryable.
type PluginUnavailableError struct {
	Message string
	Err     error
}

func (e *PluginUnavailableError) Error() string { return e.Message }
func (e *PluginUnavailableError) Unwrap() error { return e.Err }
func (e *PluginUnavailableError) Is(t error) bool {
	_, ok := t.(*PluginUnavailableError)
	return ok
}

// PluginCredentialsMissing: required credentials are absent, not linked or
// not decryptable. The worker treats it as permanent.
type PluginCredentialsMissing struct {
	Message string
	Err     error
}

func (e *PluginCredentialsMissing) Error() string { return e.Message }
func (e *PluginCredentialsMissing) Unwrap() error { return e.Err }
func (e *PluginCredentialsMissing) Is(t error) bool {
	_, ok := t.(*PluginCredentialsMissing)
	return ok
}

// PluginTimeoutError: a plugin call exceeded its deadline. Retryable.
type PluginTimeoutError struct {
	Message string
	Err     error
}

func (e *PluginTimeoutError) Error() string { return e.Message }
func (e *PluginTimeoutError) Unwrap() error { return e.Err }
func (e *PluginTimeoutError) Is(t error) bool {
	_, ok := t.(*PluginTimeoutError)
	return ok
}

// CursorExpiredError: a logs plugin's pagination cursor has expired.
type CursorExpiredError struct{ Message string }

func (e *CursorExpiredError) Error() string { return e.Message }
func (e *CursorExpiredError) Is(t error) bool {
	_, ok := t.(*CursorExpiredError)
	return ok
}

// PluginAuthenticationFailed: the upstream rejected the plugin's credentials.
type PluginAuthenticationFailed struct{ Message string }

func (e *PluginAuthenticationFailed) Error() string { return e.Message }
func (e *PluginAuthenticationFailed) Is(t error) bool {
	_, ok := t.(*PluginAuthenticationFailed)
	return ok
}

// IdentityAuthorizationPending: a device flow is not authorised yet.
type IdentityAuthorizationPending struct{ Message string }

func (e *IdentityAuthorizationPending) Error() string { return e.Message }
func (e *IdentityAuthorizationPending) Is(t error) bool {
	_, ok := t.(*IdentityAuthorizationPending)
	return ok
}

// IdentityAuthorizationExpired: a device code expired.
type IdentityAuthorizationExpired struct{ Message string }

func (e *IdentityAuthorizationExpired) Error() string { return e.Message }
func (e *IdentityAuthorizationExpired) Is(t error) bool {
	_, ok := t.(*IdentityAuthorizationExpired)
	return ok
}

// PluginSchemaCollisionError: plugin-declared graph labels collide.
type PluginSchemaCollisionError struct{ Message string }

func (e *PluginSchemaCollisionError) Error() string { return e.Message }
func (e *PluginSchemaCollisionError) Is(t error) bool {
	_, ok := t.(*PluginSchemaCollisionError)
	return ok
}

// Sentinels for errors.Is.
var (
	ErrPluginNotFound       = &PluginNotFoundError{Message: "plugin not found"}
	ErrPluginUnavailable    = &PluginUnavailableError{Message: "plugin unavailable"}
	ErrCredentialsMissing   = &PluginCredentialsMissing{Message: "plugin credentials missing"}
	ErrPluginTimeout        = &PluginTimeoutError{Message: "plugin timed out"}
	ErrCursorExpired        = &CursorExpiredError{Message: "cursor expired"}
	ErrAuthenticationFailed = &PluginAuthenticationFailed{Message: "authentication failed"}
	ErrAuthorizationPending = &IdentityAuthorizationPending{Message: "authorization pending"}
	ErrAuthorizationExpired = &IdentityAuthorizationExpired{Message: "authorization expired"}
	ErrSchemaCollision      = &PluginSchemaCollisionError{Message: "schema collision"}
	// ErrNotImplemented is Python's NotImplementedError: an optional method
	// a plugin does not provide.
	ErrNotImplemented = errors.New("not implemented")
)

// PermanentError marks an action failure that must not be retried; the
// worker dead-letters it at once (reason action_failed). Build it with
// Permanent.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err so the worker does not retry it. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// RateLimitedError says "retry after RetryAfter"; the worker naks the
// message with that delay instead of its backoff (reason rate_limited).
// Python's later PluginRateLimited.
type RateLimitedError struct {
	RetryAfter time.Duration
	Err        error
}

func (e *RateLimitedError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("rate limited; retry after %s", e.RetryAfter)
	}
	return fmt.Sprintf("rate limited; retry after %s: %s", e.RetryAfter, e.Err)
}
func (e *RateLimitedError) Unwrap() error { return e.Err }

// RetryAfter wraps err as a rate-limit error carrying the wait d.
func RetryAfter(err error, d time.Duration) error {
	return &RateLimitedError{RetryAfter: d, Err: err}
}

// ValidationError is a model validation failure; Field names the JSON path
// of the offending field (pydantic's loc), e.g. "options.0.name".
type ValidationError struct {
	Model   string
	Field   string
	Message string
}

func (e *ValidationError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s: %s", e.Model, e.Message)
	}
	return fmt.Sprintf("%s.%s: %s", e.Model, e.Field, e.Message)
}

// ConfigError: a rule's handler_config does not satisfy the action's
// config schema or cannot be decoded into its config type. Permanent
// (reason invalid_config).
type ConfigError struct {
	Action string
	Err    error
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("handler_config for action %q is invalid: %s", e.Action, e.Err)
}
func (e *ConfigError) Unwrap() error { return e.Err }
