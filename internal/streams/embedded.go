package streams

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedConfig configures the in-process nats-server.
type EmbeddedConfig struct {
	// DataDir holds the JetStream file store (created if missing).
	DataDir string
	// Host to listen on (127.0.0.1: the embedded server is for one host).
	Host string
	// Port to listen on; 0 or -1 picks a free port.
	Port int
	// ReadyTimeout bounds the wait for the server to accept clients (10 s).
	ReadyTimeout time.Duration
	// Logs sends the server's own log lines to stderr.
	Logs bool
}

// Embedded is a running in-process nats-server with JetStream.
type Embedded struct {
	srv *server.Server
}

// StartEmbedded starts nats-server with JetStream on DataDir.
func StartEmbedded(c EmbeddedConfig) (*Embedded, error) {
	if c.DataDir == "" {
		return nil, errors.New("embedded nats-server: data dir is required")
	}
	if c.Host == "" {
		c.Host = "127.0.0.1"
	}
	if c.Port == 0 {
		c.Port = server.RANDOM_PORT
	}
	if c.ReadyTimeout <= 0 {
		c.ReadyTimeout = 10 * time.Second
	}
	dir, err := filepath.Abs(c.DataDir)
	if err != nil {
		return nil, fmt.Errorf("embedded nats-server: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded nats-server: data dir: %w", err)
	}
	opts := &server.Options{
		ServerName: "imbi-worker-embedded",
		Host:       c.Host,
		Port:       c.Port,
		JetStream:  true,
		StoreDir:   dir,
		NoSigs:     true,
		NoLog:      !c.Logs,
		// Big enough for a dead letter with every header plus a large body.
		MaxPayload: 8 << 20,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats-server: %w", err)
	}
	if c.Logs {
		srv.ConfigureLogger()
	}
	go srv.Start()
	if !srv.ReadyForConnections(c.ReadyTimeout) {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded nats-server did not start within %s", c.ReadyTimeout)
	}
	return &Embedded{srv: srv}, nil
}

// URL is the client URL (nats://127.0.0.1:<port>).
func (e *Embedded) URL() string { return e.srv.ClientURL() }

// Server exposes the underlying server (tests, advisories).
func (e *Embedded) Server() *server.Server { return e.srv }

// Shutdown stops the server and waits for it to finish.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}
