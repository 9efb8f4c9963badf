// Command demolistener is the local HTTP endpoint `make demo` points the
// http#request samples at (testdata/events/README.md). It prints its base
// URL on the first line of stdout and serves until killed.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "demolistener:", err)
		os.Exit(1)
	}
	fmt.Printf("http://%s\n", ln.Addr())
	var mu sync.Mutex
	hits := map[string]int{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits[r.URL.Path]++
		n := hits[r.URL.Path]
		mu.Unlock()
		fmt.Fprintf(os.Stderr, "%s %s %s (request %d)\n", time.Now().Format(time.TimeOnly), r.Method, r.URL.Path, n)
		switch p := r.URL.Path; {
		case strings.HasPrefix(p, "/ok/"):
		case strings.HasPrefix(p, "/flaky/"):
			if n == 1 { // no Retry-After: unavailable, an ordinary retry
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		case strings.HasPrefix(p, "/limited/"):
			if n <= 4 { // rate-limited four times (more than --max-attempts), then fine
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusTooManyRequests)
			}
		case strings.HasPrefix(p, "/fail/"):
			w.WriteHeader(http.StatusInternalServerError)
		case strings.HasPrefix(p, "/reject/"):
			w.WriteHeader(http.StatusUnprocessableEntity)
		case strings.HasPrefix(p, "/slow/"):
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second): // far past the demo's 1 s action timeout
			}
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, "demolistener:", err)
		os.Exit(1)
	}
}
