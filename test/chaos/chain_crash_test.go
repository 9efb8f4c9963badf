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

	"github.com/aweber-imbi/imbi-worker/internal/donemarker"
	"github.com/aweber-imbi/imbi-worker/publisher"
	"github.com/aweber-imbi/imbi-worker/test/chaos/chaosplugin"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// TestChainKill9BetweenContinuationAndAck (issue 15): an imbi-worker-chaos
// process SIGKILLs itself the moment step 2's done-marker is stored —
// after the continuation (step 3) was published, before step 2's ack
// (chaosplugin.MarkerKiller). A restarted process gets step 2 again after
// AckWait: a done-marker duplicate, whose continuation republishes step 3
// with the same id, which the duplicate window drops. Every step of every
// chain runs exactly once. Each round reports whether the kill beat the
// ack (step 2 still in the stream after the process died); at least one
// must, or the test did not test the window. Step 3 never runs in the
// process about to be killed (RecordConfig.HoldWhileKillPending): a round
// that did not finish logs every run of its steps, the markers, the
// consumer and the stream (chainKillDiagnostics).
func TestChainKill9BetweenContinuationAndAck(t *testing.T) {
	if testing.Short() {
		t.Skip("process suite; skipped with -short")
	}
	rounds := envInt(t, "CHAIN_KILL_ROUNDS", 10)
	dir := t.TempDir()
	bins := buildBinaries(t, dir)
	recordDir := filepath.Join(dir, "records")
	require.NoError(t, os.MkdirAll(recordDir, 0o755))
	srv := newNATSServer(t, bins.natsServer, dir)
	srv.start()
	common := []string{"--nats-url", srv.url(), "--ack-wait", "1s"}
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
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stream, err := js.Stream(ctx, wire.DefaultStream)
	require.NoError(t, err)
	streamMsgs := func() uint64 {
		info, err := stream.Info(ctx)
		require.NoError(t, err)
		return info.State.Msgs
	}

	r := &replica{t: t, name: "chainkill", bin: bins.worker, dir: dir,
		env:  []string{"IMBI_CHAOS_RECORD_DIR=" + recordDir, "IMBI_CHAOS_KILL_NATS_URL=" + srv.url()},
		args: append([]string{"run", "--concurrency", "4", "--admin-addr", "127.0.0.1:0", "--backoff-base", "100ms"}, common...)}
	r.start()
	pids := map[int]int{r.current().cmd.Process.Pid: 1} // pid → life
	t.Cleanup(func() {
		if t.Failed() {
			for l := 1; l <= r.lives; l++ {
				t.Log(tail(filepath.Join(dir, fmt.Sprintf("chainkill-%d.log", l)), 200))
			}
		}
	})

	runID := strconv.FormatInt(time.Now().UnixNano(), 36)
	runs := func() map[string]int {
		counts, err := chaosplugin.ReadRecords(recordDir)
		require.NoError(t, err)
		out := map[string]int{}
		for line, n := range counts {
			key, _, _ := strings.Cut(line, "@")
			out[key] += n
		}
		return out
	}
	landed := 0
	for i := range rounds {
		id := fmt.Sprintf("ck.%s.%02d", runID, i)
		base := recordMessage(id, chaosplugin.Slug+"#"+chaosplugin.ActionRecord, nil)
		c := publisher.Chain{ID: id, DeliveryID: id, Data: base.Data}
		for s := range 3 {
			rc := chaosplugin.RecordConfig{Label: "chain", Step: strconv.Itoa(s)}
			switch s {
			case 1:
				rc.KillAfterMarker = wire.ChainStepID(id, s)
			case 2:
				// Step 3 is published before step 2's marker, so the dying
				// process may pull and run it; killed before step 3's own
				// marker is stored, it would run again after the restart
				// (every kill's effect→marker window, not the one aimed
				// at). The dying process holds it instead.
				rc.HoldWhileKillPending = true
			}
			cfg, err := json.Marshal(rc)
			require.NoError(t, err)
			c.Rules = append(c.Rules, publisher.ChainRule{
				Rule: wire.Rule{Handler: chaosplugin.Slug + "#" + chaosplugin.ActionRecord, HandlerConfig: cfg, Ordinal: s}, Plugin: base.Data.Plugin})
		}
		_, err := pub.PublishChain(ctx, c)
		require.NoError(t, err)
		require.True(t, r.current().wait(30*time.Second), "round %d: the process was not killed", i)
		// Step 3 (published before the marker) is there either way; step 2
		// too when the kill came before its ack.
		if streamMsgs() == 2 {
			landed++
		}
		r.start()
		pids[r.current().cmd.Process.Pid] = r.lives
		// A step that ran twice fails at once (its count never goes back
		// to 1); a chain that stalls fails after 60 s. Both log why.
		deadline := time.Now().Add(60 * time.Second)
		for {
			got := runs()
			for s := range 3 {
				if key := id + "/" + strconv.Itoa(s); got[key] > 1 {
					chainKillDiagnostics(ctx, t, js, recordDir, id, pids)
					t.Fatalf("round %d: %s ran %d times", i, key, got[key])
				}
			}
			if got[id+"/0"] == 1 && got[id+"/1"] == 1 && got[id+"/2"] == 1 && streamMsgs() == 0 {
				break
			}
			if time.Now().After(deadline) {
				chainKillDiagnostics(ctx, t, js, recordDir, id, pids)
				t.Fatalf("round %d: the chain did not finish", i)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	time.Sleep(1500 * time.Millisecond) // past AckWait: a late redelivery would run now
	for key, n := range runs() {
		require.Equal(t, 1, n, "%s ran %d times", key, n)
	}
	require.Len(t, runs(), rounds*3)
	require.Zero(t, streamMsgs())
	dlq, err := js.Stream(ctx, wire.DefaultDLQStream)
	require.NoError(t, err)
	dinfo, err := dlq.Info(ctx)
	require.NoError(t, err)
	require.Zero(t, dinfo.State.Msgs, "dead letters")
	t.Logf("kills between the marker and the ack: %d of %d", landed, rounds)
	require.Positive(t, landed, "no kill landed before the ack: the window was not tested")
	report(t, "chain_kill9", map[string]int{"rounds": rounds, "kills_before_ack": landed})
}

// chainKillDiagnostics logs what a round that did not finish left behind,
// so a rare failure names its cause: every run of the chain's steps (the
// process's life and when), each step's done-marker, the work consumer's
// state and the messages still in the work stream.
func chainKillDiagnostics(ctx context.Context, t *testing.T, js jetstream.JetStream, recordDir, id string, pids map[int]int) {
	t.Helper()
	byPID, err := chaosplugin.ReadRecordsByProcess(recordDir)
	if err != nil {
		t.Logf("records: %v", err)
	}
	for line, ps := range byPID {
		if key, _, _ := strings.Cut(line, "@"); strings.HasPrefix(key, id+"/") {
			for _, pid := range ps {
				t.Logf("run %s by pid %d (life %d)", line, pid, pids[pid])
			}
		}
	}
	if kv, err := js.KeyValue(ctx, wire.DefaultDoneBucket); err != nil {
		t.Logf("done bucket: %v", err)
	} else {
		for s := range 3 {
			ceID := wire.ChainStepID(id, s) // the first step's too (publisher.Chain)
			e, err := kv.Get(ctx, donemarker.Key(ceID))
			if err != nil {
				t.Logf("done-marker %s: %v", ceID, err)
				continue
			}
			t.Logf("done-marker %s: stored %s (revision %d)", ceID, e.Created().Format(time.RFC3339Nano), e.Revision())
		}
	}
	if c, err := js.Consumer(ctx, wire.DefaultStream, wire.DefaultConsumer); err != nil {
		t.Logf("consumer: %v", err)
	} else if ci, err := c.Info(ctx); err != nil {
		t.Logf("consumer info: %v", err)
	} else {
		t.Logf("consumer: num_pending %d num_ack_pending %d num_redelivered %d num_waiting %d delivered %+v ack_floor %+v ack_wait %s max_ack_pending %d",
			ci.NumPending, ci.NumAckPending, ci.NumRedelivered, ci.NumWaiting, ci.Delivered, ci.AckFloor, ci.Config.AckWait, ci.Config.MaxAckPending)
	}
	stream, err := js.Stream(ctx, wire.DefaultStream)
	if err != nil {
		t.Logf("stream: %v", err)
		return
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Logf("stream info: %v", err)
		return
	}
	t.Logf("stream: %d messages, first %d last %d", info.State.Msgs, info.State.FirstSeq, info.State.LastSeq)
	for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		if m, err := stream.GetMsg(ctx, seq); err == nil {
			t.Logf("stream seq %d subject %s msg_id %s stored %s", seq, m.Subject, m.Header.Get(nats.MsgIdHdr), m.Time.Format(time.RFC3339Nano))
		}
	}
}
