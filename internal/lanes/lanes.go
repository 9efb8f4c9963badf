// Package lanes keeps rate-limit lanes (wire-contract v1.1 §B) in the
// imbi_lanes KV bucket: a lane is a plugin slug plus the credential set in
// use (plugin.id); a paused lane's messages wait instead of running. The
// same bucket holds each deferred message's deferral count, so the worker
// can tell attempts from deliveries (decision 0010).
package lanes

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Key names a lane. An empty PluginID is the plugin's own lane: a pause of
// it holds every credential set of the plugin (and the messages that name
// no plugin.id).
type Key struct {
	Plugin   string `json:"plugin"`
	PluginID string `json:"plugin_id,omitempty"`
}

func (k Key) String() string {
	if k.PluginID == "" {
		return k.Plugin
	}
	return k.Plugin + "/" + k.PluginID
}

// State is a lane's value in the bucket.
type State struct {
	Key
	// PausedUntil is when the pause ends; zero: until resumed by hand.
	PausedUntil time.Time `json:"paused_until,omitzero"`
	Reason      string    `json:"reason,omitempty"`
	// SetBy is who paused it: SetByWorker (a rate limit) or an operator.
	SetBy string    `json:"set_by,omitempty"`
	SetAt time.Time `json:"set_at,omitzero"`
}

// SetByWorker marks a pause set by a rate-limited outcome. Such a pause
// never replaces an operator's.
const SetByWorker = "worker"

// PausedAt reports whether the pause holds at now.
func (s *State) PausedAt(now time.Time) bool {
	return s != nil && (s.PausedUntil.IsZero() || now.Before(s.PausedUntil))
}

// Manual reports whether an operator set the pause.
func (s *State) Manual() bool { return s != nil && !byWorker(s.SetBy) }

// byWorker: "worker" or "worker <worker id>".
func byWorker(by string) bool {
	return by == SetByWorker || strings.HasPrefix(by, SetByWorker+" ")
}

// Limits on what goes into the bucket.
const (
	// MaxReasonBytes bounds a pause's reason.
	MaxReasonBytes = 512
	// MaxByBytes bounds who set it.
	MaxByBytes = 128
	// maxNameBytes bounds a slug or plugin id used as a key token as is;
	// longer (or with other characters) it is hashed.
	maxNameBytes = 64
	// opTimeout bounds one bucket operation.
	opTimeout = 5 * time.Second
)

// Typed errors.
var (
	// ErrNoPlugin: a lane needs a plugin slug.
	ErrNoPlugin = errors.New("lanes: a plugin slug is required")
	// ErrPastUntil: a pause must end in the future.
	ErrPastUntil = errors.New("lanes: --until must be in the future")
)

// token is s as one KV key token: itself when it is short and made of
// [-_a-zA-Z0-9] (not starting with '='), else '=' + a hash.
func token(s string) string {
	ok := s != "" && len(s) <= maxNameBytes && s[0] != '='
	for i := 0; ok && i < len(s); i++ {
		c := s[i]
		ok = c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
	}
	if ok {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return "=" + hex.EncodeToString(sum[:16])
}

// laneKey is k's key in the bucket: lane.<plugin>[.<plugin id>].
func laneKey(k Key) string {
	if k.PluginID == "" {
		return "lane." + token(k.Plugin)
	}
	return "lane." + token(k.Plugin) + "." + token(k.PluginID)
}

// Store reads and writes lanes in the bucket. Safe for concurrent use.
type Store struct {
	kv jetstream.KeyValue
	js jetstream.JetStream
	// bucket is the KV bucket name (for raw publishes with a TTL).
	bucket string
	now    func() time.Time
}

// NewStore is a Store on the lanes bucket kv.
func NewStore(js jetstream.JetStream, kv jetstream.KeyValue) *Store {
	return &Store{kv: kv, js: js, bucket: kv.Bucket(), now: time.Now}
}

// Open binds the lanes bucket by name.
func Open(ctx context.Context, js jetstream.JetStream, bucket string) (*Store, error) {
	kv, err := js.KeyValue(ctx, bucket)
	if err != nil {
		return nil, fmt.Errorf("lanes bucket %s: %w", bucket, err)
	}
	return NewStore(js, kv), nil
}

// PauseRequest pauses a lane.
type PauseRequest struct {
	Lane Key
	// Until: when the pause ends; zero: until resumed.
	Until  time.Time
	Reason string
	By     string
}

// Pause sets a pause. An operator's pause replaces whatever is there. A
// worker's (By = SetByWorker…) only extends: it never shortens a pause
// and never replaces an operator's that still holds.
func (s *Store) Pause(ctx context.Context, p PauseRequest) error {
	if strings.TrimSpace(p.Lane.Plugin) == "" {
		return ErrNoPlugin
	}
	now := s.now()
	if !p.Until.IsZero() && !p.Until.After(now) {
		return ErrPastUntil
	}
	st := State{Key: p.Lane, PausedUntil: p.Until.UTC(), Reason: clip(p.Reason, MaxReasonBytes),
		SetBy: clip(p.By, MaxByBytes), SetAt: now.UTC()}
	val, err := json.Marshal(st)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	key := laneKey(p.Lane)
	if !byWorker(st.SetBy) {
		_, err = s.kv.Put(ctx, key, val)
		return wrap("pause", err)
	}
	// A worker's pause: compare-and-set so concurrent replicas only extend.
	for range 5 {
		cur, err := s.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			if _, err = s.kv.Create(ctx, key, val); err == nil || !errors.Is(err, jetstream.ErrKeyExists) {
				return wrap("pause", err)
			}
			continue
		case err != nil:
			return wrap("pause", err)
		}
		var old State
		if json.Unmarshal(cur.Value(), &old) == nil && old.PausedAt(now) &&
			(old.Manual() || old.PausedUntil.IsZero() || !old.PausedUntil.Before(st.PausedUntil)) {
			return nil // already paused at least as long, or by an operator
		}
		if _, err = s.kv.Update(ctx, key, val, cur.Revision()); err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return wrap("pause", err)
		}
	}
	return nil // others kept writing: their pause stands
}

// Resume ends the pause of lane k; an empty PluginID resumes every lane
// of the plugin. by is recorded in nothing (the key is deleted) but kept
// for the interface; resuming a lane that is not paused is no error.
func (s *Store) Resume(ctx context.Context, k Key, by string) error {
	_ = by
	if strings.TrimSpace(k.Plugin) == "" {
		return ErrNoPlugin
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	keys := []string{laneKey(k)}
	if k.PluginID == "" {
		more, err := s.keys(ctx, laneKey(k)+".>")
		if err != nil {
			return wrap("resume", err)
		}
		keys = append(keys, more...)
	}
	for _, key := range keys {
		if err := s.kv.Purge(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return wrap("resume", err)
		}
	}
	return nil
}

// List returns every lane with a pause that still holds, by key.
func (s *Store) List(ctx context.Context) ([]State, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	keys, err := s.keys(ctx, "lane.>")
	if err != nil {
		return nil, wrap("list", err)
	}
	now := s.now()
	var out []State
	for _, key := range keys {
		e, err := s.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			continue
		}
		if err != nil {
			return nil, wrap("list", err)
		}
		var st State
		if json.Unmarshal(e.Value(), &st) != nil || !st.PausedAt(now) {
			continue
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, nil
}

// keys lists the live keys matching filter.
func (s *Store) keys(ctx context.Context, filter string) ([]string, error) {
	lister, err := s.kv.ListKeysFiltered(ctx, filter)
	if err != nil {
		return nil, err
	}
	var out []string
	for k := range lister.Keys() {
		out = append(out, k)
	}
	return out, nil
}

func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("lanes %s: %w", op, err)
}

// clip cuts s to n bytes on a UTF-8 boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
