package creds

import (
	"context"
	"errors"
	"fmt"
)

// Rotation re-encrypts every stored secret under the keyring's first key:
// Plugin.plugin_configuration and the ServiceApplication secrets
// (client_secret, webhook_secret, private_key, signing_secret). It is
// idempotent (values already under the first key are skipped) and
// resumable (a rerun after a crash only touches what is left), and each
// write is a compare-and-set on the old token, so a concurrent `patch` is
// never overwritten with stale data.

// DefaultRotateBatch is how many nodes one rotation query reads and writes.
const DefaultRotateBatch = 200

// RotateStats counts what rotation saw, per property.
type RotateStats struct {
	Label, Property string
	Scanned         int // non-empty values looked at
	Rotated         int // re-encrypted under the first key
	Current         int // already under the first key: left alone
	Undecryptable   int // no key opens them: left alone, reported
	Changed         int // changed by someone else meanwhile: left alone
}

func (s RotateStats) String() string {
	return fmt.Sprintf("%s.%s: scanned=%d rotated=%d current=%d undecryptable=%d changed_concurrently=%d",
		s.Label, s.Property, s.Scanned, s.Rotated, s.Current, s.Undecryptable, s.Changed)
}

// rotateTarget names one encrypted property. The label and property are
// fixed identifiers (Cypher cannot parameterise them), never user input.
type rotateTarget struct {
	label, property string
	read, write     string
}

// newRotateTarget builds the paged read and the compare-and-set write of
// one property. Only the constants of rotateTargets reach it.
func newRotateTarget(label, property string) rotateTarget {
	return rotateTarget{
		label: label, property: property,
		read: fmt.Sprintf(`MATCH (n:%[1]s) WHERE elementId(n) > $after
  AND n.%[2]s IS NOT NULL AND n.%[2]s <> ''
RETURN elementId(n) AS eid, n.%[2]s AS token
ORDER BY eid LIMIT $limit`, label, property),
		write: fmt.Sprintf(`UNWIND $rows AS row
MATCH (n:%[1]s) WHERE elementId(n) = row.eid AND n.%[2]s = row.old
SET n.%[2]s = row.new
RETURN count(n) AS written`, label, property),
	}
}

// rotateTargets are every property Imbi Fernet-encrypts with the auth key:
// the plugin configuration blob, and each ServiceApplication secret the
// API encrypts (plugins-spec §10.1). Leaving one behind would make it
// unreadable once the old key is retired.
var rotateTargets = []rotateTarget{
	newRotateTarget("Plugin", "plugin_configuration"),
	newRotateTarget("ServiceApplication", "client_secret"),
	newRotateTarget("ServiceApplication", "webhook_secret"),
	newRotateTarget("ServiceApplication", "private_key"),
	newRotateTarget("ServiceApplication", "signing_secret"),
}

// Rotate re-encrypts every secret under kr's first key, batch by batch.
// It needs the Keyring itself (not any Cipher) to tell which key opens a
// token.
func (s *Store) Rotate(ctx context.Context, kr *Keyring, batch int) ([]RotateStats, error) {
	if kr == nil {
		return nil, ErrKeyNotConfigured
	}
	if batch <= 0 {
		batch = DefaultRotateBatch
	}
	var all []RotateStats
	for _, t := range rotateTargets {
		st, err := s.rotate(ctx, kr, t, batch)
		all = append(all, st)
		if err != nil {
			return all, err
		}
	}
	return all, nil
}

func (s *Store) rotate(ctx context.Context, kr *Keyring, t rotateTarget, batch int) (RotateStats, error) {
	st := RotateStats{Label: t.label, Property: t.property}
	after := ""
	for {
		recs, err := s.query(ctx, "rotate_read", t.read, map[string]any{"after": after, "limit": batch}, false)
		if err != nil {
			return st, &StoreError{Op: "read " + t.label, Err: err}
		}
		if len(recs) == 0 {
			return st, nil
		}
		var rows []map[string]any
		for _, rec := range recs {
			eid, _ := valueOf(rec, "eid").(string)
			after = eid
			st.Scanned++
			tok, isString := valueOf(rec, "token").(string)
			if !isString {
				st.Undecryptable++
				continue
			}
			if kr.IsCurrent(tok) {
				st.Current++
				continue
			}
			plain, ok, _ := kr.Decrypt(tok)
			if !ok {
				st.Undecryptable++
				s.log.WarnContext(ctx, "key rotation: value no configured key opens; left as is",
					"label", t.label, "property", t.property, "element_id", eid)
				continue
			}
			fresh, err := kr.Encrypt(plain)
			if err != nil {
				return st, err
			}
			rows = append(rows, map[string]any{"eid": eid, "old": tok, "new": fresh})
		}
		if len(rows) > 0 {
			recs, err := s.query(ctx, "rotate_write", t.write, map[string]any{"rows": rows}, true)
			if err != nil {
				return st, &StoreError{Op: "write " + t.label, Err: err}
			}
			written := 0
			if len(recs) > 0 {
				n, _ := valueOf(recs[0], "written").(int64)
				written = int(n)
			}
			st.Rotated += written
			st.Changed += len(rows) - written
		}
		if err := ctx.Err(); err != nil {
			return st, errors.Join(errors.New("rotation interrupted; rerun to finish"), err)
		}
	}
}
