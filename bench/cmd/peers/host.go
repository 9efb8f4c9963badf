package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/aweber-imbi/imbi-worker/wire"
)

// pluginHost is one imbi-plugin-host process of a remote row.
type pluginHost struct {
	cmd    *exec.Cmd
	exited chan error
}

// startPluginHost starts imbi-plugin-host on url (its log in dir) and
// waits until it answers $SRV.PING: it announced itself and serves its
// catalog, so the worker started next loads the catalog before it pulls.
func startPluginHost(o options, nc *nats.Conn, url, dir string) (*pluginHost, error) {
	args := append([]string{"--nats-url", url, "--shutdown-grace", "5"}, strings.Fields(o.hostArgs)...)
	log, err := os.Create(filepath.Join(dir, "plugin-host.log"))
	if err != nil {
		return nil, err
	}
	defer log.Close() // the child has its own descriptor
	h := &pluginHost{cmd: exec.Command(o.pluginHost, args...), exited: make(chan error, 1)}
	h.cmd.Stdout, h.cmd.Stderr = log, log
	h.cmd.SysProcAttr = dieWithParent()
	if err := h.cmd.Start(); err != nil {
		return nil, fmt.Errorf("plugin host: %w", err)
	}
	go func() { h.exited <- h.cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if h.exitedEarly() {
			return nil, errors.New("plugin host exited before it answered $SRV.PING")
		}
		if _, err := nc.Request("$SRV.PING."+wire.PluginHostService, nil, 500*time.Millisecond); err == nil {
			return h, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.stop()
	return nil, errors.New("plugin host did not answer $SRV.PING within 30s")
}

// exitedEarly reports whether the host has exited (keeping the result
// for stop).
func (h *pluginHost) exitedEarly() bool {
	select {
	case err := <-h.exited:
		h.exited <- err
		return true
	default:
		return false
	}
}

func (h *pluginHost) stop() {
	_ = h.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-h.exited:
	case <-time.After(15 * time.Second):
		_ = h.cmd.Process.Kill()
		<-h.exited
	}
}

// runStats is the host's run endpoint in its $SRV.STATS reply.
type runStats struct {
	Requests  int    `json:"num_requests"`
	Errors    int    `json:"num_errors"`
	LastError string `json:"last_error"`
}

// hostRunStats asks the (one) host for its run endpoint's counters.
func hostRunStats(nc *nats.Conn) (runStats, error) {
	m, err := nc.Request("$SRV.STATS."+wire.PluginHostService, nil, 2*time.Second)
	if err != nil {
		return runStats{}, fmt.Errorf("plugin host stats: %w", err)
	}
	var st struct {
		Endpoints []struct {
			Name string `json:"name"`
			runStats
		} `json:"endpoints"`
	}
	if err := json.Unmarshal(m.Data, &st); err != nil {
		return runStats{}, fmt.Errorf("plugin host stats: %w", err)
	}
	for _, e := range st.Endpoints {
		if e.Name == "run" {
			return e.runStats, nil
		}
	}
	return runStats{}, fmt.Errorf("plugin host stats: no run endpoint in %s", m.Data)
}

// checkNoDeadLetters fails when the drain dead-lettered a message (a
// drain that dead-letters is fast and measures nothing).
func checkNoDeadLetters(ctx context.Context, js jetstream.JetStream) error {
	s, err := js.Stream(ctx, wire.DefaultDLQStream)
	if err != nil {
		return fmt.Errorf("dead-letter stream: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return fmt.Errorf("dead-letter stream: %w", err)
	}
	if info.State.Msgs != 0 {
		return fmt.Errorf("%d messages were dead-lettered", info.State.Msgs)
	}
	return nil
}
