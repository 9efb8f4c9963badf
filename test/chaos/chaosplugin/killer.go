package chaosplugin

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/nats-io/nats.go"
)

// MarkerKiller SIGKILLs its own process the moment the done-marker of a
// CloudEvent id is stored: after the worker stored the marker (and, for a
// chain step, published the continuation before it) and before it acked
// the message. It watches the marker's KV subject on a connection of its
// own. Each id kills once per directory (a guard file), so the restarted
// process runs on.
type MarkerKiller struct {
	url, bucket, dir string
	mu               sync.Mutex
	nc               *nats.Conn
	// armed: this process armed a kill, so it is about to die (pending).
	armed bool
}

// NewMarkerKiller watches bucket on the server at url; dir holds the
// guard files.
func NewMarkerKiller(url, bucket, dir string) *MarkerKiller {
	return &MarkerKiller{url: url, bucket: bucket, dir: dir}
}

// arm subscribes to ceID's marker before the action returns, so the
// marker write cannot be missed. The id must be a valid KV key as it is
// (the suites' ids are).
func (k *MarkerKiller) arm(ceID string) error {
	guard, err := os.OpenFile(filepath.Join(k.dir, "killed-"+ceID), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if errors.Is(err, os.ErrExist) {
		return nil // killed for this id already: run normally
	}
	if err != nil {
		return err
	}
	_ = guard.Close()
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.nc == nil {
		if k.nc, err = nats.Connect(k.url); err != nil {
			return err
		}
	}
	if _, err := k.nc.Subscribe("$KV."+k.bucket+"."+ceID, func(*nats.Msg) {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}); err != nil {
		return err
	}
	k.armed = true
	return k.nc.Flush()
}

// pending reports whether this process armed a kill: it dies the moment
// that marker is stored. A restarted process has none pending (the guard
// file keeps it from arming the same id again).
func (k *MarkerKiller) pending() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.armed
}
