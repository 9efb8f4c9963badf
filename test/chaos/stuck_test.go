package chaos_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/test/chaos/chaosplugin"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// TestStuckActions (issue 6 item 6): actions that ignore their context, ones
// that sleep past their deadline and one that panics share 4 slots with 60
// good messages. There are as many context-ignoring messages as slots, so
// had the worker waited for them, every slot would be blocked for 8 s. The
// bad ones must not hold their slots: the good messages finish long before
// the stuck actions would have returned on their own, every bad message is
// settled (all its attempts) within that time too, and each is settled as
// the contract says — timeout is
// retryable, so it is retried until max_attempts (3 here) and then
// dead-lettered with Last-Reason timeout; a panic is dead-lettered at once
// with reason panic.
func TestStuckActions(t *testing.T) {
	const (
		slots       = 4
		maxAttempts = 3
		stuckMS     = 8000
		good        = 60
	)
	h := newHarness(t, harnessOptions{Concurrency: slots, MaxAttempts: maxAttempts})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	type bad struct {
		id, action, reason, lastReason, attempts string
	}
	bads := []bad{
		{"stuck.ignore-ctx.1", chaosplugin.ActionIgnoreCtx, string(wire.ReasonMaxAttempts), string(wire.ReasonTimeout), strconv.Itoa(maxAttempts)},
		{"stuck.ignore-ctx.2", chaosplugin.ActionIgnoreCtx, string(wire.ReasonMaxAttempts), string(wire.ReasonTimeout), strconv.Itoa(maxAttempts)},
		{"stuck.ignore-ctx.3", chaosplugin.ActionIgnoreCtx, string(wire.ReasonMaxAttempts), string(wire.ReasonTimeout), strconv.Itoa(maxAttempts)},
		{"stuck.ignore-ctx.4", chaosplugin.ActionIgnoreCtx, string(wire.ReasonMaxAttempts), string(wire.ReasonTimeout), strconv.Itoa(maxAttempts)},
		{"stuck.sleep.1", chaosplugin.ActionSleep, string(wire.ReasonMaxAttempts), string(wire.ReasonTimeout), strconv.Itoa(maxAttempts)},
		{"stuck.sleep.2", chaosplugin.ActionSleep, string(wire.ReasonMaxAttempts), string(wire.ReasonTimeout), strconv.Itoa(maxAttempts)},
		{"stuck.panic", chaosplugin.ActionPanic, string(wire.ReasonPanic), "", "1"},
	}
	stuckCfg, err := json.Marshal(chaosplugin.RecordConfig{Label: "stuck", SleepMS: stuckMS})
	require.NoError(t, err)
	start := time.Now()
	for _, b := range bads {
		msg, err := encodeFor(ctx, b.id, chaosplugin.Slug+"#"+b.action, stuckCfg)
		require.NoError(t, err)
		_, err = h.js.PublishMsg(ctx, msg)
		require.NoError(t, err)
	}
	goodCfg, err := json.Marshal(chaosplugin.RecordConfig{Label: "good", SleepMS: 20})
	require.NoError(t, err)
	var ids []string
	for i := range good {
		id := fmt.Sprintf("stuck.good.%02d", i)
		ids = append(ids, id)
		msg, err := encodeRecord(ctx, id, goodCfg)
		require.NoError(t, err)
		_, err = h.js.PublishMsg(ctx, msg)
		require.NoError(t, err)
	}

	require.Empty(t, h.rec.WaitFor(ctx, ids))
	goodDone := time.Since(start)
	// 60 × 20 ms of good work on 4 slots is 0.3 s; the bad messages cost
	// at most 7 × 3 attempts × (300 ms deadline + grace). Had a stuck
	// action kept its slot, all four slots would be blocked for 8 s.
	stuck := time.Duration(stuckMS) * time.Millisecond
	require.Less(t, goodDone, stuck*8/10, "good messages waited for stuck actions")

	letters := h.waitDeadLetters(ctx, len(bads))
	badDone := time.Since(start)
	require.Len(t, letters, len(bads))
	// Three attempts each: only possible this fast if every attempt gave
	// its slot back at the deadline.
	require.Less(t, badDone, stuck, "stuck actions were waited for")
	byID := map[string]deadLetter{}
	for _, dl := range letters {
		var ev struct {
			ID string `json:"id"`
		}
		require.NoError(t, json.Unmarshal(dl.Data, &ev))
		byID[ev.ID] = dl
	}
	for _, b := range bads {
		dl, ok := byID[b.id]
		require.True(t, ok, "%s not dead-lettered", b.id)
		require.Equal(t, b.reason, dl.Header.Get(wire.DLQReason), "%s: %s", b.id, dl.Header.Get(wire.DLQError))
		require.Equal(t, b.lastReason, dl.Header.Get(wire.DLQLastReason), b.id)
		require.Equal(t, b.attempts, dl.Header.Get(wire.DLQAttempts), b.id)
	}
	info := h.waitSettled(ctx)
	require.Zero(t, info.NumAckPending)
	h.requireRunning()

	for _, id := range ids {
		require.Equal(t, 1, h.rec.Counts()[id], id)
	}
	metrics := h.metricsText()
	abandoned := metricSum(metrics, "imbi_worker_action_abandoned")
	timeouts := metricSum(metrics, "imbi_worker_action_timeouts")
	// Each ignore_ctx attempt is abandoned; every ignore_ctx and sleep
	// attempt times out.
	require.GreaterOrEqual(t, abandoned, float64(4*maxAttempts), "abandoned actions metric\n%s", metrics)
	require.GreaterOrEqual(t, timeouts, float64(6*maxAttempts), "timeouts metric")
	t.Logf("FIGURES stuck: %d good done in %s, %d bad settled in %s, abandoned=%v timeouts=%v",
		good, goodDone.Round(time.Millisecond), len(bads), badDone.Round(time.Millisecond), abandoned, timeouts)
}

// metricSum adds the values of every Prometheus sample whose name starts
// with prefix (all label sets; _total and unit suffixes included).
func metricSum(text, prefix string) float64 {
	var sum float64
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}
