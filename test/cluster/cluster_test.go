// Package cluster_test runs the worker on a real three-node NATS JetStream
// cluster (in process, loopback, random ports) with R3 streams, and shuts
// down and restarts the work stream's leader while messages flow: every
// CloudEvent must still be processed, nothing dead-lettered, nothing left
// in the stream.
package cluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/dispatch"
	"github.com/aweber-imbi/imbi-worker/internal/dispatch/dispatchtest"
	"github.com/aweber-imbi/imbi-worker/internal/streams"
	"github.com/aweber-imbi/imbi-worker/internal/worker"
	"github.com/aweber-imbi/imbi-worker/plugins"
	"github.com/aweber-imbi/imbi-worker/publisher"
	"github.com/aweber-imbi/imbi-worker/wire"
	"github.com/aweber-imbi/imbi-worker/wire/wiredata"
)

const (
	clusterSize = 3
	messages    = 2000
	// The whole run (start, publish, outage, recovery, drain) must finish
	// within this. An idle 2-core machine needs about 15 s with -race;
	// the margin is for CI neighbours. Phases share the one deadline
	// rather than each having its own, so a slow start is not a failure
	// as long as the whole run fits.
	budget = 60 * time.Second
	// minDowntime keeps the stopped server down long enough for the
	// cluster to elect new stream and consumer leaders and the clients to
	// reconnect elsewhere.
	minDowntime = 3 * time.Second
	// The publisher's pace: publishWindow messages every publishEvery.
	publishWindow = 50
	publishEvery  = 200 * time.Millisecond
)

// cluster is three nats-servers routed to each other on loopback. Each
// node keeps its ports and store directory across a restart, as a real
// server on a fixed address would.
type cluster struct {
	t       *testing.T
	mu      sync.Mutex
	servers [clusterSize]*server.Server
	opts    [clusterSize]func() *server.Options
}

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		_ = ln.Close()
	}
	return ports
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	ports := freePorts(t, 2*clusterSize)
	var routes []string
	for i := range clusterSize {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[clusterSize+i]))
	}
	root := t.TempDir()
	c := &cluster{t: t}
	for i := range clusterSize {
		name, client, route, dir := fmt.Sprintf("n%d", i+1), ports[i], ports[clusterSize+i], filepath.Join(root, fmt.Sprintf("n%d", i+1))
		c.opts[i] = func() *server.Options {
			return &server.Options{
				ServerName: name, Host: "127.0.0.1", Port: client,
				JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true,
				Cluster: server.ClusterOpts{Name: "imbi", Host: "127.0.0.1", Port: route},
				Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
			}
		}
	}
	for i := range clusterSize {
		c.start(i)
	}
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, s := range c.servers {
			if s != nil {
				s.Shutdown()
				s.WaitForShutdown()
			}
		}
	})
	return c
}

func (c *cluster) start(i int) {
	c.t.Helper()
	s, err := server.NewServer(c.opts[i]())
	require.NoError(c.t, err)
	go s.Start()
	require.True(c.t, s.ReadyForConnections(15*time.Second), "server %d did not start", i+1)
	c.mu.Lock()
	c.servers[i] = s
	c.mu.Unlock()
}

func (c *cluster) stop(i int) {
	c.mu.Lock()
	s := c.servers[i]
	c.servers[i] = nil
	c.mu.Unlock()
	s.Shutdown()
	s.WaitForShutdown()
}

func (c *cluster) index(name string) int {
	for i := range clusterSize {
		if fmt.Sprintf("n%d", i+1) == name {
			return i
		}
	}
	c.t.Fatalf("no server named %q", name)
	return -1
}

func (c *cluster) url() string {
	var urls []string
	for i := range clusterSize {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", c.opts[i]().Port))
	}
	return strings.Join(urls, ",")
}

func (c *cluster) connect(name string) *nats.Conn {
	c.t.Helper()
	nc, err := nats.Connect(c.url(), nats.Name(name), nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond), nats.ReconnectJitter(50*time.Millisecond, 0))
	require.NoError(c.t, err)
	c.t.Cleanup(nc.Close)
	return nc
}

func message(id string) publisher.Message {
	return publisher.Message{
		ID: id,
		Data: wiredata.ActionData{
			Rule:    wire.Rule{ID: "r-1", Handler: "test#ok", HandlerConfig: json.RawMessage(`{}`)},
			Plugin:  &wire.PluginRef{ID: "pl-1", Slug: "test"},
			Context: plugins.PluginContext{ProjectID: "p-1", ProjectSlug: "checkout", OrgSlug: "acme"},
			Event: plugins.Event{Type: "push", ThirdPartyService: "github",
				Metadata: plugins.EventMetadata{WebhookID: "wh-1"},
				Payload:  map[string]any{"id": id}},
			ExternalIdentifier: "acme/checkout",
		},
	}
}

// publishAll publishes every id, a window at a time asynchronously and
// paced (publishWindow per publishEvery, ~8 s for 2,000, so messages are
// still arriving before, during and after the outage), then publishes
// again whatever was not acknowledged with the same Nats-Msg-Id: the
// stream's duplicate window makes a retry of a publish that did land
// harmless.
func publishAll(ctx context.Context, p *publisher.Publisher, ids []string) error {
	const window = publishWindow
	pending := ids
	for len(pending) > 0 {
		if ctx.Err() != nil {
			return fmt.Errorf("%d messages not published: %w", len(pending), ctx.Err())
		}
		var failed []string
		pace := time.NewTicker(publishEvery)
		for lo := 0; lo < len(pending); lo += window {
			if lo > 0 {
				select {
				case <-pace.C:
				case <-ctx.Done():
				}
			}
			chunk := pending[lo:min(lo+window, len(pending))]
			futures := make([]jetstream.PubAckFuture, len(chunk))
			for i, id := range chunk {
				f, err := p.PublishAsync(ctx, message(id))
				if err != nil {
					failed = append(failed, id)
					continue
				}
				futures[i] = f
			}
			timeout := time.After(3 * time.Second)
			for i, f := range futures {
				if f == nil {
					continue
				}
				select {
				case <-f.Ok():
				case <-f.Err():
					failed = append(failed, chunk[i])
				case <-timeout:
					failed = append(failed, chunk[i])
				}
			}
		}
		pace.Stop()
		if len(failed) > 0 {
			time.Sleep(100 * time.Millisecond)
		}
		pending = failed
	}
	return nil
}

func TestWorkerSurvivesServerRestartInCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("clustered test: not in -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	start := time.Now()
	remaining := func() time.Duration { return time.Until(start.Add(budget)) }

	c := startCluster(t)
	adminNC := c.connect("admin")
	js, err := jetstream.New(adminNC)
	require.NoError(t, err)

	// R3 everything. AckWait is short so a delivery whose ack was lost
	// in the failover comes back within seconds, not 30 s.
	sc := streams.Config{Replicas: clusterSize, Idempotency: true, AckWait: 3 * time.Second}
	sc.SetDefaults()
	require.Eventually(t, func() bool { // the meta leader is elected after start
		actx, acancel := context.WithTimeout(ctx, 5*time.Second)
		defer acancel()
		_, err := streams.Apply(actx, js, sc)
		return err == nil
	}, 20*time.Second, 200*time.Millisecond, "provisioning R3 streams")

	rec := dispatchtest.NewRecorder()
	reg, err := dispatchtest.Registry(&dispatchtest.Plugin{Slug: "test", Rec: rec})
	require.NoError(t, err)

	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("IMBI_CLUSTER_TEST_LOGS") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	workerCtx, stopWorkers := context.WithCancel(ctx)
	defer stopWorkers()
	var (
		wg      sync.WaitGroup
		runErrs = make(chan error, 2)
		workers []*worker.Worker
	)
	for i := range 2 {
		w, err := worker.New(c.connect(fmt.Sprintf("worker-%d", i)),
			&dispatch.Dispatcher{Registry: reg, DefaultTimeout: 5 * time.Second},
			worker.Config{
				Streams: sc, Concurrency: 8, MaxAttempts: 5,
				BackoffBase: 50 * time.Millisecond, BackoffMax: 500 * time.Millisecond,
				ShutdownGrace: 5 * time.Second, Idempotency: true,
				WorkerID: fmt.Sprintf("cluster-worker-%d", i), Logger: logger,
			})
		require.NoError(t, err)
		workers = append(workers, w)
		wg.Add(1)
		go func() {
			defer wg.Done()
			runErrs <- w.Run(workerCtx)
		}()
	}
	for _, w := range workers {
		require.Eventually(t, func() bool { return w.Ready() == nil }, 15*time.Second, 20*time.Millisecond)
	}

	ids := make([]string, messages)
	for i := range ids {
		ids[i] = fmt.Sprintf("cluster-%04d.0", i)
	}
	pub, err := publisher.New(c.connect("publisher"), publisher.Config{})
	require.NoError(t, err)
	defer pub.Close()
	pubErr := make(chan error, 1)
	go func() { pubErr <- publishAll(ctx, pub, ids) }()

	processed := func() int {
		n := 0
		for _, id := range ids {
			if rec.Calls(id) > 0 {
				n++
			}
		}
		return n
	}

	// Progress every 2 s, shown with -v or on failure: where time went.
	go func() {
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-workerCtx.Done():
				return
			case <-tick.C:
				t.Logf("%s: %d processed, publisher %+v", time.Since(start).Round(time.Millisecond), processed(), pub.Stats())
			}
		}
	}()

	// Mid-stream, shut down the node that leads the work stream (the
	// worst node to lose), keep it down, then bring it back.
	t.Logf("%s: cluster up, streams provisioned, workers ready", time.Since(start).Round(time.Millisecond))
	require.Eventually(t, func() bool { return processed() >= messages/4 }, remaining(), 20*time.Millisecond)
	stream, err := js.Stream(ctx, sc.Stream)
	require.NoError(t, err)
	info, err := stream.Info(ctx)
	require.NoError(t, err)
	require.NotNil(t, info.Cluster)
	require.Len(t, info.Cluster.Replicas, clusterSize-1, "an R3 stream has a leader and two replicas")
	victim := c.index(info.Cluster.Leader)
	atStop := processed()
	c.stop(victim)
	t.Logf("%s: stopped stream leader %s after %d of %d processed", time.Since(start).Round(time.Millisecond), info.Cluster.Leader, atStop, messages)

	// The survivors keep the stream available: work continues during the outage.
	downSince := time.Now()
	require.Eventually(t, func() bool { return processed() >= atStop+messages/10 }, remaining(), 20*time.Millisecond,
		"no progress while one of three servers is down")
	time.Sleep(minDowntime - time.Since(downSince)) // a real outage, not a blip
	atRestart := processed()
	c.start(victim)
	t.Logf("%s: restarted %s after %d processed", time.Since(start).Round(time.Millisecond), info.Cluster.Leader, atRestart)

	require.NoError(t, <-pubErr)
	t.Logf("%s: all published; %d processed", time.Since(start).Round(time.Millisecond), processed())
	require.Eventually(t, func() bool { return processed() == messages }, remaining(), 50*time.Millisecond,
		"lost messages: only %d of %d processed", processed(), messages)

	// Everything settled: the work stream is empty (all acked), nothing
	// was dead-lettered.
	require.Eventually(t, func() bool {
		si, err := js.Stream(ctx, sc.Stream)
		if err != nil {
			return false
		}
		inf, err := si.Info(ctx)
		return err == nil && inf.State.Msgs == 0
	}, max(remaining(), 5*time.Second), 100*time.Millisecond, "work stream not drained")
	dlq, err := js.Stream(ctx, sc.DLQStream)
	require.NoError(t, err)
	dinfo, err := dlq.Info(ctx)
	require.NoError(t, err)
	require.Zero(t, dinfo.State.Msgs, "nothing may be dead-lettered")

	// The restarted server rejoined as a current replica: R3 again.
	require.Eventually(t, func() bool {
		si, err := js.Stream(ctx, sc.Stream)
		if err != nil {
			return false
		}
		inf, err := si.Info(ctx)
		if err != nil || inf.Cluster == nil || len(inf.Cluster.Replicas) != clusterSize-1 {
			return false
		}
		for _, r := range inf.Cluster.Replicas {
			if !r.Current || r.Offline {
				return false
			}
		}
		return true
	}, max(remaining(), 5*time.Second), 100*time.Millisecond, "the restarted server did not catch up")

	dupes := 0
	for _, id := range ids {
		if rec.Calls(id) > 1 {
			dupes++
		}
	}
	// At-least-once: an action whose ack was lost in the failover may run
	// again (done-markers catch most); report it, it is not a loss.
	t.Logf("all %d processed in %s; %d ran more than once", messages, time.Since(start).Round(time.Millisecond), dupes)

	stopWorkers()
	wg.Wait()
	close(runErrs)
	for err := range runErrs {
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("worker Run: %v", err)
		}
	}
}
