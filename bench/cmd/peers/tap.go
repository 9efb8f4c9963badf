package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
)

// harnessInbox is the inbox prefix of the harness's own connection, so the
// tap can leave the harness's consumer-info polls out of its counts.
const harnessInbox = "_HARNESS"

// tapper counts, from a subscription of its own, the JetStream API and
// ack traffic the server receives during a drain: pull requests (and the
// batch each asks for), acks by kind (+ACK, +WPI = InProgress, -NAK, with
// a reply = a double ack/AckSync), done-marker writes ($KV.>), lookups
// (direct gets), other API calls. Diagnostic only: the server delivers
// every counted message once more, to the tap.
type tapper struct {
	nc *nats.Conn
	mu sync.Mutex
	n  map[string]int
}

func startTap(url string) (*tapper, error) {
	nc, err := nats.Connect(url, nats.Name("bench-tap"))
	if err != nil {
		return nil, err
	}
	t := &tapper{nc: nc, n: map[string]int{}}
	for _, subj := range []string{"$JS.API.>", "$JS.ACK.>", "$KV.>"} {
		if _, err := nc.Subscribe(subj, t.count); err != nil {
			nc.Close()
			return nil, err
		}
	}
	if err := nc.Flush(); err != nil {
		nc.Close()
		return nil, err
	}
	return t, nil
}

func (t *tapper) count(m *nats.Msg) {
	if strings.HasPrefix(m.Reply, harnessInbox) {
		return
	}
	var kinds []string
	switch s := m.Subject; {
	case strings.HasPrefix(s, "$JS.API.CONSUMER.MSG.NEXT."):
		var req struct {
			Batch         int   `json:"batch"`
			MaxBytes      int   `json:"max_bytes"`
			Expires       int64 `json:"expires"`
			IdleHeartbeat int64 `json:"idle_heartbeat"`
			NoWait        bool  `json:"no_wait"`
		}
		_ = json.Unmarshal(m.Data, &req)
		kinds = append(kinds, "pull requests", fmt.Sprintf("pull batch=%d", req.Batch))
		t.mu.Lock()
		t.n["pull: messages asked for"] += req.Batch
		t.mu.Unlock()
	case strings.HasPrefix(s, "$JS.ACK."):
		kind := string(m.Data)
		if kind == "" {
			kind = "+ACK"
		}
		if i := strings.IndexByte(kind, ' '); i > 0 {
			kind = kind[:i]
		}
		if m.Reply != "" {
			kind += " (with reply: double ack)"
		}
		kinds = append(kinds, "ack "+kind)
	case strings.HasPrefix(s, "$KV."):
		kinds = append(kinds, "KV write (done-marker)")
	case strings.HasPrefix(s, "$JS.API.DIRECT.GET."):
		kind := "direct get (single key)"
		if strings.Contains(string(m.Data), "multi_last") {
			kind = "direct get (batch)"
		}
		kinds = append(kinds, kind)
	default:
		// $JS.API.<KIND>.<VERB>...: keep the API name, drop the objects.
		f := strings.Split(s, ".")
		kinds = append(kinds, "api "+strings.Join(f[2:min(len(f), 4)], "."))
	}
	t.mu.Lock()
	for _, k := range kinds {
		t.n[k]++
	}
	t.mu.Unlock()
}

func (t *tapper) counts() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.n)
}

func (t *tapper) close() { t.nc.Close() }

// tapLine prints the counts, most frequent first, with the count per
// drained message.
func tapLine(n map[string]int, msgs int) string {
	keys := make([]string, 0, len(n))
	for k := range n {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return n[b] - n[a] })
	var parts []string
	for i, k := range keys {
		if strings.HasPrefix(k, "pull batch=") && i > 12 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %d (%.3f/msg)", k, n[k], float64(n[k])/float64(msgs)))
	}
	return strings.Join(parts, "; ")
}
