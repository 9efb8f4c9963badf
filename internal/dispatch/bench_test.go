package dispatch_test

import (
	"context"
	"testing"

	"github.com/aweber-imbi/imbi-worker/internal/dispatch"
)

// BenchmarkDispatch: resolve, config validation and the goroutine with a
// deadline around a no-op action (docs/performance.md).
func BenchmarkDispatch(b *testing.B) {
	s := newSetup(b, nil)
	m := message("test#strict", "test#strict", `{"label": "bench"}`)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if res := s.disp.Dispatch(ctx, m); res.Class != dispatch.Success {
			b.Fatal(res.ErrorText)
		}
	}
}

// BenchmarkDispatchInline is BenchmarkDispatch on the caller's goroutine
// (the worker's path): no hand-off to another goroutine and back.
func BenchmarkDispatchInline(b *testing.B) {
	s := newSetup(b, nil)
	m := message("test#strict", "test#strict", `{"label": "bench"}`)
	ctx := context.Background()
	onAbandon := func(dispatch.Result) { b.Fatal("abandoned") }
	b.ReportAllocs()
	for b.Loop() {
		if res := s.disp.DispatchInline(ctx, m, onAbandon); res.Class != dispatch.Success {
			b.Fatal(res.ErrorText)
		}
	}
}
