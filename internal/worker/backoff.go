package worker

import (
	"time"

	"github.com/sethvargo/go-retry"
)

// backoff is the delay before delivery attempt+1 after attempt failed:
// exponential from base, capped at max, with full jitter (uniform in
// [0, capped)), from sethvargo/go-retry. It is computed from the attempt
// number alone (the message's delivery count), so no state survives in
// the worker and a retry survives a restart.
func backoff(base, maxDelay time.Duration, attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	b := retry.WithFullJitter(retry.WithCappedDuration(maxDelay, retry.NewExponential(base)))
	var d time.Duration
	for range attempt {
		d, _ = b.Next()
	}
	return d
}
