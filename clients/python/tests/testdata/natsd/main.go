// Command natsd runs a nats-server with JetStream on 127.0.0.1 (random
// port) for the Python client's publisher tests, without a worker consuming
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
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

func main() {
	dataDir := flag.String("data-dir", "", "JetStream store directory (required)")
	token := flag.String("token", "", "require this client auth token (tests of the client's auth options)")
	flag.Parse()
	if *dataDir == "" {
		fmt.Fprintln(os.Stderr, "natsd: --data-dir is required")
		os.Exit(2)
	}
	srv, err := server.NewServer(&server.Options{
		Host:          "127.0.0.1",
		Port:          server.RANDOM_PORT,
		JetStream:     true,
		StoreDir:      *dataDir,
		NoSigs:        true,
		NoLog:         true,
		Authorization: *token,
		MaxPayload:    8 << 20, // as the worker's embedded server
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "natsd:", err)
		os.Exit(1)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		fmt.Fprintln(os.Stderr, "natsd: not ready within 10s")
		os.Exit(1)
	}
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	fmt.Println(srv.ClientURL())

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
