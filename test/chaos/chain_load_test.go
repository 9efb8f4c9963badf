package chaos_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/publisher"
	"github.com/aweber-imbi/imbi-worker/test/chaos/chaosplugin"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// chainLoadFigures is what one chain-load run measured.
type chainLoadFigures struct {
	Chains      int     `json:"chains"`
	Steps       int     `json:"steps_per_chain"`
	Replicas    int     `json:"replicas"`
	Concurrency int     `json:"concurrency_per_replica"`
	Executions  int     `json:"executions"`
	Seconds     float64 `json:"seconds"`
	StepsPerSec float64 `json:"steps_per_second"`
}

// TestChainLoad (issue 15): CHAIN_LOAD_CHAINS chains (default 1,000) of 3
// chaos#record steps through 3 imbi-worker-chaos processes on a real
// nats-server. Each step runs once, the steps of a chain run in order
// (each recorded after the one before it, whichever process ran it), and
// nothing is left in the work stream or unacked.
func TestChainLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("process suite; skipped with -short")
	}
	var (
		chains      = envInt(t, "CHAIN_LOAD_CHAINS", 1000)
		replicas    = envInt(t, "CHAIN_LOAD_REPLICAS", 3)
		concurrency = envInt(t, "CHAIN_LOAD_CONCURRENCY", 8)
		timeout     = envDuration(t, "CHAIN_LOAD_TIMEOUT", 3*time.Minute)
	)
	const steps = 3
	dir := t.TempDir()
	bins := buildBinaries(t, dir)
	recordDir := filepath.Join(dir, "records")
	require.NoError(t, os.MkdirAll(recordDir, 0o755))
	srv := newNATSServer(t, bins.natsServer, dir)
	srv.start()
	common := []string{"--nats-url", srv.url()}
	out, err := runOnce(bins.worker, append([]string{"streams", "apply"}, common...)...)
	require.NoError(t, err, "streams apply:\n%s", out)

	nc, err := nats.Connect(srv.url())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	pub, err := publisher.New(nc, publisher.Config{})
	require.NoError(t, err)
	t.Cleanup(pub.Close)

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	runID := strconv.FormatInt(time.Now().UnixNano(), 36)
	for i := range chains {
		id := fmt.Sprintf("ch.%s.%05d", runID, i)
		base := recordMessage(id, chaosplugin.Slug+"#"+chaosplugin.ActionRecord, nil)
		c := publisher.Chain{ID: id, DeliveryID: id, Data: base.Data}
		for s := range steps {
			cfg, err := json.Marshal(chaosplugin.RecordConfig{Label: "chain", Step: strconv.Itoa(s)})
			require.NoError(t, err)
			c.Rules = append(c.Rules, publisher.ChainRule{
				Rule:   wire.Rule{Handler: chaosplugin.Slug + "#" + chaosplugin.ActionRecord, HandlerConfig: cfg, Ordinal: s},
				Plugin: base.Data.Plugin,
			})
		}
		_, err := pub.PublishChain(ctx, c)
		require.NoError(t, err)
	}

	start := time.Now()
	runArgs := append([]string{"run", "--concurrency", strconv.Itoa(concurrency), "--admin-addr", "127.0.0.1:0"}, common...)
	env := []string{"IMBI_CHAOS_RECORD_DIR=" + recordDir}
	for i := range replicas {
		r := &replica{t: t, name: fmt.Sprintf("chain%d", i), bin: bins.worker, dir: dir, env: env, args: runArgs}
		r.start()
	}

	type rec struct {
		at  int64
		pid int
	}
	var runs map[string][]rec // "<chain>/<step>" → executions
	total := 0
	for {
		byPID, err := chaosplugin.ReadRecordsByProcess(recordDir)
		require.NoError(t, err)
		runs, total = map[string][]rec{}, 0
		for line, pids := range byPID {
			key, at, ok := strings.Cut(line, "@")
			require.True(t, ok, "record %q", line)
			nanos, err := strconv.ParseInt(at, 10, 64)
			require.NoError(t, err)
			for _, pid := range pids {
				runs[key] = append(runs[key], rec{at: nanos, pid: pid})
				total++
			}
		}
		if total >= chains*steps {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d of %d steps ran before the timeout", total, chains*steps)
		case <-time.After(100 * time.Millisecond):
		}
	}
	elapsed := time.Since(start)
	require.Equal(t, chains*steps, total, "a step ran more than once")
	pidsSeen := map[int]bool{}
	for i := range chains {
		id := fmt.Sprintf("ch.%s.%05d", runID, i)
		var prev int64
		for s := range steps {
			r := runs[id+"/"+strconv.Itoa(s)]
			require.Len(t, r, 1, "%s step %d", id, s)
			require.Greater(t, r[0].at, prev, "%s: step %d ran before step %d", id, s, s-1)
			prev = r[0].at
			pidsSeen[r[0].pid] = true
		}
	}
	require.Len(t, pidsSeen, replicas, "every process took steps")

	require.Eventually(t, func() bool {
		s, err := js.Stream(ctx, wire.DefaultStream)
		require.NoError(t, err)
		info, err := s.Info(ctx)
		require.NoError(t, err)
		c, err := js.Consumer(ctx, wire.DefaultStream, wire.DefaultConsumer)
		require.NoError(t, err)
		ci, err := c.Info(ctx)
		require.NoError(t, err)
		return info.State.Msgs == 0 && ci.NumAckPending == 0 && ci.NumPending == 0
	}, 30*time.Second, 100*time.Millisecond, "messages left in the work stream")
	dlq, err := js.Stream(ctx, wire.DefaultDLQStream)
	require.NoError(t, err)
	dinfo, err := dlq.Info(ctx)
	require.NoError(t, err)
	require.Zero(t, dinfo.State.Msgs, "dead letters")

	report(t, "chain_load", chainLoadFigures{Chains: chains, Steps: steps, Replicas: replicas, Concurrency: concurrency,
		Executions: total, Seconds: elapsed.Seconds(), StepsPerSec: float64(total) / elapsed.Seconds()})
}
