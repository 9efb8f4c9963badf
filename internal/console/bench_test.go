package console_test

import (
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/aweber-imbi/imbi-worker/internal/console"
)

// BenchmarkDeadLetterList100k: the dead-letter list API over 100,000
// letters with filters (reason, handler + time range, chain id, text in
// the redacted body, a deep page), through HTTP on loopback with the
// stream on an embedded server. Reports p50/p95/max per request and the
// first request (which builds the index); fails when p95 ≥ 300 ms.
//
//	go test -run '^$' -bench DeadLetterList100k -benchtime 200x ./internal/console/
func BenchmarkDeadLetterList100k(b *testing.B) {
	const n = 100_000
	e := setup(b, envOpts{})
	start := time.Now()
	e.publish(b, manySpecs(n, e.now))
	b.Logf("stored %d letters in %s", n, time.Since(start).Round(time.Millisecond))
	c := e.client(b, "bearer")

	t0 := time.Now()
	var p console.Page
	c.getJSON("/api/v1/dead-letters?limit=1", &p)
	build := time.Since(t0)
	if p.Total != n {
		b.Fatalf("total %d, want %d", p.Total, n)
	}
	mid := url.QueryEscape(e.now.Add(-n / 2 * time.Second).Format(time.RFC3339))
	queries := []string{
		"reason=panic",
		"handler=github&since=" + mid,
		"chain_id=c-1",
		"q=proj-3&reason=timeout",
		"reason=invalid_config,rate_limited&offset=10000&limit=100",
		"handler=slack%23post&until=" + mid,
	}
	var lat []time.Duration
	i := 0
	for b.Loop() {
		q := queries[i%len(queries)]
		i++
		t := time.Now()
		c.getJSON("/api/v1/dead-letters?"+q, &p)
		lat = append(lat, time.Since(t))
		if p.Total == 0 {
			b.Fatalf("%s matched nothing", q)
		}
	}
	slices.Sort(lat)
	pct := func(f float64) time.Duration { return lat[min(len(lat)-1, int(f*float64(len(lat))))] }
	b.ReportMetric(float64(pct(0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(pct(0.95).Microseconds())/1000, "p95-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(float64(build.Milliseconds()), "index-build-ms")
	if p95 := pct(0.95); p95 >= 300*time.Millisecond {
		b.Errorf("p95 %s over 100k letters, want < 300 ms", p95)
	}
}
