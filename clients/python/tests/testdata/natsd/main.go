// Command natsd runs the worker's embedded nats-server (JetStream on, loopback
// only) for the Python client's publisher tests, without a worker consuming
// the stream. It prints the client URL on one line, then serves until stdin
// closes or it gets SIGTERM, so a test process that dies cannot leak it.
//
// It lives under testdata so `go test ./...` and `go vet ./...` skip it; the
// tests build it with `go build ./clients/python/tests/testdata/natsd`.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/aweber-imbi/imbi-worker/internal/streams"
)

func main() {
	dataDir := flag.String("data-dir", "", "JetStream store directory (required)")
	flag.Parse()
	srv, err := streams.StartEmbedded(streams.EmbeddedConfig{DataDir: *dataDir, Host: "127.0.0.1"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "natsd:", err)
		os.Exit(1)
	}
	defer srv.Shutdown()
	fmt.Println(srv.URL())

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	stdinClosed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stdinClosed)
	}()
	select {
	case <-stop:
	case <-stdinClosed:
	}
}
