package cli

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/pflag"

	"github.com/aweber-imbi/imbi-worker/internal/creds"
	"github.com/aweber-imbi/imbi-worker/internal/registry"
	"github.com/aweber-imbi/imbi-worker/internal/remote"
)

// remoteRunFlags are the remote-action settings of `run` (wire contract
// §D, docs/python-plugins.md).
type remoteRunFlags struct {
	mode       string
	refresh    time.Duration
	timeoutCap time.Duration
}

func (r *remoteRunFlags) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&r.mode, "remote-plugins", string(remote.ModeAuto),
		"Python plugin hosts (imbi-plugin-host): auto (use them when one answers), on (expect one: unknown handlers are retried as unavailable until a catalog loads) or off")
	fs.DurationVar(&r.refresh, "remote-refresh", remote.DefaultRefresh, "how often the plugin hosts' catalog is reloaded (also on every host announce)")
	fs.DurationVar(&r.timeoutCap, "remote-timeout-cap", 0, "cap on every remote action's deadline (0: the catalog's timeout, else --plugin-timeout)")
}

// newRemoteSource builds the remote catalog source; the registry is built
// over its Registrations. Credentials go to hosts encrypted with the
// worker's current key (IMBI_AUTH_ENCRYPTION_KEY(S)).
func newRemoteSource(r *remoteRunFlags, log *slog.Logger) (*remote.Source, error) {
	mode, err := remote.ParseMode(r.mode)
	if err != nil {
		return nil, err
	}
	cfg := remote.Config{Mode: mode, Refresh: r.refresh, TimeoutCap: r.timeoutCap, Logger: log}
	kr, err := creds.KeyringFromEnv(os.Getenv)
	switch {
	case err == nil:
		cfg.Keys = kr
	case errors.Is(err, creds.ErrKeyNotConfigured):
	default:
		return nil, err
	}
	return remote.New(cfg), nil
}

// startRemote loads the catalog and follows host announces.
func startRemote(ctx context.Context, src *remote.Source, nc *nats.Conn, reg *registry.Registry) error {
	return src.Start(ctx, nc, reg)
}

// remoteRegistry is the default registry plus the catalog of the plugin
// hosts on natsURL (`imbi-worker actions --nats-url`).
func remoteRegistry(ctx context.Context, natsURL string) (*registry.Registry, func(), error) {
	nc, err := nats.Connect(natsURL, nats.Name("imbi-worker actions"))
	if err != nil {
		return nil, nil, err
	}
	src := remote.New(remote.Config{Mode: remote.ModeOn})
	reg := registry.New(src.Registrations)
	if _, err := reg.Load(); err != nil {
		nc.Close()
		return nil, nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	if err := src.Start(sctx, nc, reg); err != nil {
		cancel()
		nc.Close()
		return nil, nil, err
	}
	if !src.Loaded() {
		cancel()
		nc.Close()
		return nil, nil, errors.New("no plugin host answered the catalog request on " + natsURL)
	}
	return reg, func() { cancel(); nc.Close() }, nil
}
