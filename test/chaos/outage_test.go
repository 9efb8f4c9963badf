package chaos_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/creds"
	"github.com/aweber-imbi/imbi-worker/internal/testenv"
	"github.com/aweber-imbi/imbi-worker/internal/worker"
	"github.com/aweber-imbi/imbi-worker/test/chaos/chaosplugin"
)

// neo4jOutageProxy sits between the worker and the test Neo4j. An outage
// closes every open connection and stops listening, so the driver sees
// exactly what it sees when the Neo4j process is stopped (connections
// reset, new ones refused); restore listens on the same port again.
//
// Why not `scripts/neo4j.sh stop` and `start`: the repo's test Neo4j is
// deliberately ephemeral (tools/neo4j wipes its data directory on every
// start), so after a real restart the Plugin node is gone and every
// message is, correctly, credentials_missing. A production Neo4j keeps its
// data across a restart; the proxy reproduces that outage faithfully.
type neo4jOutageProxy struct {
	t        *testing.T
	target   string
	addr     string
	mu       sync.Mutex
	listener net.Listener
	conns    map[net.Conn]struct{}
}

func newNeo4jOutageProxy(t *testing.T, target string) *neo4jOutageProxy {
	t.Helper()
	p := &neo4jOutageProxy{t: t, target: target, conns: map[net.Conn]struct{}{}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p.addr = l.Addr().String()
	p.serve(l)
	t.Cleanup(func() { p.cut() })
	return p
}

func (p *neo4jOutageProxy) serve(l net.Listener) {
	p.mu.Lock()
	p.listener = l
	p.mu.Unlock()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return // listener closed by cut
			}
			go p.pipe(c)
		}
	}()
}

func (p *neo4jOutageProxy) pipe(client net.Conn) {
	upstream, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		_ = client.Close()
		return
	}
	p.mu.Lock()
	if p.listener == nil { // cut while dialing
		p.mu.Unlock()
		_ = client.Close()
		_ = upstream.Close()
		return
	}
	p.conns[client], p.conns[upstream] = struct{}{}, struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(upstream, client); done <- struct{}{} }()
	go func() { _, _ = io.Copy(client, upstream); done <- struct{}{} }()
	<-done
	_ = client.Close()
	_ = upstream.Close()
	p.mu.Lock()
	delete(p.conns, client)
	delete(p.conns, upstream)
	p.mu.Unlock()
}

// cut starts the outage: no listener, every connection closed.
func (p *neo4jOutageProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.listener != nil {
		_ = p.listener.Close()
		p.listener = nil
	}
	for c := range p.conns {
		_ = c.Close()
		delete(p.conns, c)
	}
}

// restore ends the outage on the same address.
func (p *neo4jOutageProxy) restore() {
	p.t.Helper()
	var l net.Listener
	var err error
	// The port was just released; retry briefly in case the kernel holds it.
	for range 50 {
		if l, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.NoError(p.t, err, "re-listen on %s", p.addr)
	p.serve(l)
}

// sharedNeo4j is the test Neo4j scripts/test.sh starts (scripts/neo4j.sh
// env); skipped on a laptop without it, a failure in CI.
func sharedNeo4j(t *testing.T) creds.Config {
	t.Helper()
	cfg := creds.ConfigFromEnv(os.Getenv)
	if cfg.URL == "" {
		testenv.Neo4jURL(t)
	}
	return cfg
}

// outageFigures is what the Neo4j outage run measured.
type outageFigures struct {
	Messages          int     `json:"messages"`
	DuringOutage      int     `json:"published_during_outage"`
	OutageTarget      string  `json:"outage_target"`
	DowntimeSeconds   float64 `json:"downtime_seconds"` // cut → reachable again
	RecoverySeconds   float64 `json:"recovery_seconds"` // reachable → every message done
	UnavailableNaks   float64 `json:"retries_unavailable"`
	DeadLetters       int     `json:"dead_letters"`
	MaxAttempts       int     `json:"max_attempts"`
	BackoffMaxSeconds float64 `json:"backoff_max_seconds"`
}

// TestNeo4jOutage (issue 6 item 2): messages whose action needs credentials
// keep arriving while Neo4j is unreachable for CHAOS_NEO4J_OUTAGE (10 s in
// CI, 30 s in `make chaos`): connections reset and refused, as when the
// process is down (see neo4jOutageProxy for why a proxy and not
// scripts/neo4j.sh stop). None may be dead-lettered for it and every one must run exactly
// once after Neo4j is back. The credentials cache is off, so every message
// needs Neo4j (worst case).
//
// It runs with the shipped retry budget (5 attempts, full-jitter backoff
// from 1 s: at most 15 s of waits, far shorter than the outage). What
// saves the messages is back-pressure, not the budget: the first
// credential load that finds the store unreachable opens the worker's
// breaker, which stops pulling (held messages are kept in progress) until
// a probe of the store succeeds, so each message spends at most an
// attempt or two on the outage (docs/reliability.md §2).
func TestNeo4jOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("process suite; skipped with -short")
	}
	var (
		outage      = envDuration(t, "CHAOS_NEO4J_OUTAGE", 10*time.Second)
		n           = envInt(t, "CHAOS_NEO4J_MESSAGES", 300)
		maxAttempts = envInt(t, "CHAOS_NEO4J_MAX_ATTEMPTS", worker.DefaultMaxAttempts)
		backoffBase = envDuration(t, "CHAOS_NEO4J_BACKOFF_BASE", worker.DefaultBackoffBase)
		backoffMax  = envDuration(t, "CHAOS_NEO4J_BACKOFF_MAX", worker.DefaultBackoffMax)
	)
	neoCfg := sharedNeo4j(t)
	target, ok := strings.CutPrefix(neoCfg.URL, "bolt://")
	require.True(t, ok, "outage test needs a bolt:// URL, got %s", neoCfg.URL)
	proxy := newNeo4jOutageProxy(t, target)
	viaProxy := neoCfg
	viaProxy.URL = "bolt://" + proxy.addr

	key, err := creds.GenerateKey()
	require.NoError(t, err)
	kr, err := creds.NewKeyring(key)
	require.NoError(t, err)
	store, err := creds.Open(viaProxy, kr, creds.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// A Plugin node of this run only (the shared Neo4j serves other tests).
	pluginID := fmt.Sprintf("pl-%s-%d", chaosplugin.CredsSlug, time.Now().UnixNano())
	_, err = neo4j.ExecuteQuery(ctx, neo4jDriver(t, neoCfg),
		`MERGE (p:Plugin {id: $id}) SET p.plugin_slug = $slug MERGE (t:ThirdPartyService {slug: 'github'}) MERGE (t)-[:HAS_PLUGIN]->(p)`,
		map[string]any{"id": pluginID, "slug": chaosplugin.CredsSlug}, neo4j.EagerResultTransformer,
		neo4j.ExecuteQueryWithDatabase(databaseOf(neoCfg)))
	require.NoError(t, err)
	_, err = store.PatchConfiguration(ctx, pluginID, []creds.Update{{Key: "token", Value: "outage-token"}})
	require.NoError(t, err)
	resolver, err := creds.NewResolver(store, creds.WithCacheTTL(0))
	require.NoError(t, err)

	h := newHarness(t, harnessOptions{
		Credentials: resolver, Concurrency: 8, MaxAttempts: maxAttempts,
		BackoffBase: backoffBase, BackoffMax: backoffMax,
	})
	cfg, err := json.Marshal(chaosplugin.RecordConfig{Label: "outage"})
	require.NoError(t, err)
	var ids []string
	publishN := func(k int, tag string) {
		for i := range k {
			id := fmt.Sprintf("outage.%s.%04d", tag, i)
			ids = append(ids, id)
			msg, err := encodeMessage(ctx, recordMessageFor(id, chaosplugin.CredsSlug+"#"+chaosplugin.ActionRecord, cfg, pluginID))
			require.NoError(t, err)
			_, err = h.js.PublishMsg(ctx, msg)
			require.NoError(t, err)
		}
	}

	fig := outageFigures{Messages: n, OutageTarget: outage.String(), MaxAttempts: maxAttempts, BackoffMaxSeconds: backoffMax.Seconds()}
	// Before: Neo4j up.
	publishN(n/3, "before")
	beforeCtx, cancelBefore := context.WithTimeout(ctx, time.Minute)
	defer cancelBefore()
	if missing := h.rec.WaitFor(beforeCtx, ids); len(missing) > 0 {
		t.Fatalf("%d messages before the outage never ran; dead letters: %s", len(missing), reasonOf(h.deadLetters(ctx)))
	}
	t.Logf("before: %d done; cutting Neo4j off", len(ids))

	// During: stop Neo4j, keep publishing for the outage, start it again.
	down := time.Now()
	proxy.cut()
	during := n / 3
	fig.DuringOutage = during
	for i := range during {
		publishN(1, fmt.Sprintf("during%04d", i))
		sleepCtx(ctx, outage/time.Duration(during))
	}
	proxy.restore()
	back := time.Now()
	fig.DowntimeSeconds = back.Sub(down).Seconds()
	t.Logf("Neo4j back after %s", back.Sub(down).Round(time.Millisecond))

	// After: Neo4j up again; everything must complete.
	publishN(n-len(ids), "after")
	// Done when every message ran or was dead-lettered and the consumer is
	// empty; the figures are reported before the assertions so a run with
	// a too-small retry budget still says how many were lost to the DLQ.
	afterCtx, cancelAfter := context.WithTimeout(ctx, 2*time.Minute)
	defer cancelAfter()
	for {
		pollCtx, cancelPoll := context.WithTimeout(afterCtx, time.Second)
		missing := h.rec.WaitFor(pollCtx, ids)
		cancelPoll()
		info := h.consumerInfo(ctx)
		if len(missing) == 0 || (len(missing) <= len(h.deadLetters(ctx)) && info.NumPending == 0 && info.NumAckPending == 0) {
			break
		}
		if afterCtx.Err() != nil {
			t.Fatalf("%d messages never completed after Neo4j came back (first %s); consumer pending=%d ack_pending=%d; dead letters: %s",
				len(missing), missing[0], info.NumPending, info.NumAckPending, reasonOf(h.deadLetters(ctx)))
		}
		sleepCtx(afterCtx, 200*time.Millisecond)
	}
	fig.RecoverySeconds = time.Since(back).Seconds()
	h.waitSettled(ctx)
	h.requireRunning()

	letters := h.deadLetters(ctx)
	fig.DeadLetters = len(letters)
	fig.UnavailableNaks = metricSumWhere(h.metricsText(), "imbi_worker_retries", `reason="unavailable"`)
	report(t, "neo4j_outage", fig)
	require.Empty(t, letters, "dead-lettered during the outage: %s", reasonOf(letters))
	require.Positive(t, fig.UnavailableNaks, "no message saw the outage: was Neo4j really down?")
	require.Contains(t, h.logs.String(), "pausing message intake", "the credential-store breaker never opened")
	require.Contains(t, h.logs.String(), "resuming message intake", "the credential-store breaker never closed")
	counts := h.rec.Counts()
	for _, id := range ids {
		require.Equal(t, 1, counts[id], "%s ran %d times", id, counts[id])
	}
}

func neo4jDriver(t *testing.T, cfg creds.Config) neo4j.DriverWithContext {
	t.Helper()
	drv, err := neo4j.NewDriverWithContext(cfg.URL, neo4j.BasicAuth(cfg.User, cfg.Password, ""))
	require.NoError(t, err)
	t.Cleanup(func() { _ = drv.Close(context.Background()) })
	return drv
}

// metricSumWhere is metricSum restricted to samples containing substr
// (e.g. a label pair).
func metricSumWhere(text, prefix, substr string) float64 {
	var sum float64
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, prefix) || !strings.Contains(line, substr) {
			continue
		}
		fields := strings.Fields(line)
		if v, err := strconv.ParseFloat(fields[len(fields)-1], 64); err == nil {
			sum += v
		}
	}
	return sum
}

func databaseOf(cfg creds.Config) string {
	if cfg.Database == "" {
		return "neo4j"
	}
	return cfg.Database
}
