package gatewayactions

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func testEventDoc() map[string]any {
	return map[string]any{
		"type":                "deployment_status",
		"third_party_service": "github",
		"attributed_to":       "",
		"metadata": map[string]any{"webhook_id": "wh-1",
			"headers": map[string]any{"x-github-event": "deployment_status"}},
		"payload": map[string]any{
			"deployment": map[string]any{"ref": "v1.2.3", "sha": "abcdef1234567890", "id": float64(42)},
			"n":          float64(3),
			"f":          1.5,
			"ok":         true,
			"nothing":    nil,
			"list":       []any{"a", float64(2)},
			"emoji":      "héllo🙂",
		},
	}
}

func TestCELEval(t *testing.T) {
	t.Parallel()
	e, err := newCELEngine(0, 0)
	require.NoError(t, err)
	vars := celVars(testEventDoc())
	tests := []struct {
		expr   string
		want   string
		isNull bool
	}{
		{expr: "payload.deployment.ref", want: "v1.2.3"},
		{expr: "type", want: "deployment_status"},
		{expr: `metadata.headers["x-github-event"] == "deployment_status"`, want: "True"},
		{expr: "third_party_service + ':' + metadata.webhook_id", want: "github:wh-1"},
		{expr: "substring(payload.deployment.sha, 0, 7)", want: "abcdef1"},
		{expr: "payload.deployment.sha.substring(0, 7)", want: "abcdef1"},
		{expr: "payload.deployment.sha.substring(8)", want: "34567890"},
		{expr: "substring(payload.deployment.sha, 8)", want: "34567890"},
		{expr: "substring(payload.deployment.sha, -4)", want: "7890"},
		{expr: "substring(payload.deployment.sha, 2, -10)", want: "cdef"},
		{expr: "substring(payload.deployment.sha, 10, 2)", want: ""},
		{expr: "substring(payload.deployment.sha, 0, 100)", want: "abcdef1234567890"},
		{expr: "substring(payload.deployment.sha, -100, 3)", want: "abc"},
		{expr: "substring(payload.emoji, 1, 6)", want: "éllo🙂"},
		{expr: "substring(payload.deployment.sha, 0, payload.n)", want: "abc"},
		{expr: "payload.deployment.id", want: "42"},
		{expr: "payload.f", want: "1.5"},
		{expr: "1.0", want: "1.0"},
		{expr: "payload.ok", want: "True"},
		{expr: "false", want: "False"},
		{expr: "1u", want: "1"},
		{expr: `duration("1s")`, want: "1s"},
		{expr: "payload.list", want: `["a",2]`},
		{expr: "payload.nothing", isNull: true},
		{expr: "null", isNull: true},
		{expr: "payload.deployment.ref.matches('^[0-9]+[.][0-9]+[.][0-9]+$') ? payload.deployment.ref : null", isNull: true},
		{expr: "payload.deployment.ref.matches('^v[0-9.]+$') ? payload.deployment.ref : null", want: "v1.2.3"},
		{expr: "payload.deployment.ref.matches('^[0-9]+$') ? payload.deployment.ref : 'sha-' + payload.deployment.sha", want: "sha-abcdef1234567890"},
	}
	for _, tc := range tests {
		t.Run(tc.expr, func(t *testing.T) {
			got, ok, err := e.Eval(context.Background(), tc.expr, vars)
			require.NoError(t, err)
			require.Equal(t, !tc.isNull, ok)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestCELErrorsNameTheExpression(t *testing.T) {
	t.Parallel()
	e, err := newCELEngine(0, 0)
	require.NoError(t, err)
	vars := celVars(testEventDoc())
	tests := []struct {
		expr  string
		phase string
	}{
		{expr: "this is not valid CEL", phase: "compile"},
		{expr: "payload.does_not_exist", phase: "evaluate"},
		{expr: "deployment.ref", phase: "evaluate"}, // 05-18 top-level shape no longer exists
		{expr: "substring(1, 2)", phase: "evaluate"},
		{expr: "1 / 0", phase: "evaluate"},
	}
	for _, tc := range tests {
		t.Run(tc.expr, func(t *testing.T) {
			_, _, err := e.Eval(context.Background(), tc.expr, vars)
			var ce *CELError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, tc.phase, ce.Phase)
			require.Contains(t, err.Error(), fmt.Sprintf("%q", tc.expr))
		})
	}
}

// A hostile expression hits the cost limit instead of running 10^7
// iterations; the limit error is a CELError (permanent), not a timeout.
func TestCELCostLimitStopsHostileExpression(t *testing.T) {
	t.Parallel()
	e, err := newCELEngine(0, 0)
	require.NoError(t, err)
	hostile := "[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, " +
		"[1,2,3,4,5,6,7,8,9,10].all(d, [1,2,3,4,5,6,7,8,9,10].all(f, [1,2,3,4,5,6,7,8,9,10].all(g, " +
		"[1,2,3,4,5,6,7,8,9,10].all(h, a+b+c+d+f+g+h > 0)))))))"
	start := time.Now()
	_, _, err = e.Eval(context.Background(), hostile, celVars(testEventDoc()))
	// 10^7 iterations without the limit; with it ~0.2 s on one core
	// (several times that under -race on a busy machine).
	require.Less(t, time.Since(start), 20*time.Second)
	var ce *CELError
	require.ErrorAs(t, err, &ce)
	require.Contains(t, err.Error(), "cost limit")
}

// An expired action deadline interrupts evaluation and surfaces as the
// context error (timeout class), not as a permanent CEL error.
func TestCELHonoursContextDeadline(t *testing.T) {
	t.Parallel()
	e, err := newCELEngine(1<<62, 0) // no practical cost limit: only ctx can stop it
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	slow := "[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, a+b+c > 0)))"
	_, _, err = e.Eval(ctx, slow, celVars(testEventDoc()))
	require.ErrorIs(t, err, context.Canceled)
	var ce *CELError
	require.False(t, errors.As(err, &ce))
}

func TestCELCacheCompilesOnceAndIsBounded(t *testing.T) {
	t.Parallel()
	e, err := newCELEngine(0, 4)
	require.NoError(t, err)
	p1, err := e.program("payload.n + 1")
	require.NoError(t, err)
	p2, err := e.program("payload.n + 1")
	require.NoError(t, err)
	require.Same(t, p1, p2, "second lookup must reuse the compiled program")

	_, err1 := e.program("not valid (")
	_, err2 := e.program("not valid (")
	require.Error(t, err1)
	require.Same(t, err1, err2, "compile errors are cached too")

	for i := range 10 {
		_, err := e.program(fmt.Sprintf("payload.n + %d", i))
		require.NoError(t, err)
	}
	require.Equal(t, 4, e.cacheLen())

	// Concurrent use from many goroutines (run with -race).
	var wg sync.WaitGroup
	vars := celVars(testEventDoc())
	for i := range 16 {
		wg.Go(func() {
			got, ok, err := e.Eval(context.Background(), fmt.Sprintf("payload.n + %d", i%6), vars)
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, fmt.Sprint(3+i%6), got)
		})
	}
	wg.Wait()
}

func TestPySlice(t *testing.T) {
	t.Parallel()
	tests := []struct {
		n, start, end  int64
		wantLo, wantHi int
	}{
		{10, 0, 7, 0, 7},
		{10, 8, 10, 8, 10},
		{10, -3, 10, 7, 10},
		{10, -30, 2, 0, 2},
		{10, 5, 2, 5, 5},
		{10, 20, 30, 10, 10},
		{0, 0, 7, 0, 0},
		{10, 0, -1, 0, 9},
	}
	for _, tc := range tests {
		lo, hi := pySlice(int(tc.n), tc.start, tc.end)
		require.Equal(t, []int{tc.wantLo, tc.wantHi}, []int{lo, hi}, "%+v", tc)
	}
}
