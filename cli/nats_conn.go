package cli

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/pflag"

	"github.com/aweber-imbi/imbi-worker/internal/streams"
)

// natsConnFlags are the connection flags shared by every command that
// talks to NATS. With no URL, `run` starts the embedded server.
type natsConnFlags struct {
	URL      string
	Creds    string
	NKey     string
	TLSCert  string
	TLSKey   string
	TLSCA    string
	Name     string
	DataDir  string
	Port     int
	Embedded bool // set by connect: the embedded server is in use
}

func (f *natsConnFlags) addFlags(fs *pflag.FlagSet, withEmbedded bool) {
	fs.StringVar(&f.URL, "nats-url", "", "NATS server URL(s), comma-separated (empty: start the embedded server)")
	fs.StringVar(&f.Creds, "nats-creds", "", "NATS user credentials (.creds) file")
	fs.StringVar(&f.NKey, "nats-nkey", "", "NATS NKey seed file")
	fs.StringVar(&f.TLSCert, "nats-tls-cert", "", "client TLS certificate file")
	fs.StringVar(&f.TLSKey, "nats-tls-key", "", "client TLS key file")
	fs.StringVar(&f.TLSCA, "nats-tls-ca", "", "CA file to verify the NATS server")
	fs.StringVar(&f.Name, "nats-name", "imbi-worker", "connection name shown by the server")
	if withEmbedded {
		fs.StringVar(&f.DataDir, "data-dir", "./.imbi-worker", "embedded server: JetStream file store directory")
		fs.IntVar(&f.Port, "embedded-port", 4222, "embedded server: port on 127.0.0.1 (0: a free port)")
	}
}

// URLFile is where `run` writes the embedded server's URL so other
// commands (and scripts) on the host can find it.
const URLFile = "nats.url"

func (f *natsConnFlags) options() ([]nats.Option, error) {
	opts := []nats.Option{
		nats.Name(f.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
	}
	if f.Creds != "" {
		opts = append(opts, nats.UserCredentials(f.Creds))
	}
	if f.NKey != "" {
		o, err := nats.NkeyOptionFromSeed(f.NKey)
		if err != nil {
			return nil, fmt.Errorf("--nats-nkey: %w", err)
		}
		opts = append(opts, o)
	}
	if (f.TLSCert == "") != (f.TLSKey == "") {
		return nil, errors.New("--nats-tls-cert and --nats-tls-key go together")
	}
	if f.TLSCert != "" {
		opts = append(opts, nats.ClientCert(f.TLSCert, f.TLSKey))
	}
	if f.TLSCA != "" {
		opts = append(opts, nats.RootCAs(f.TLSCA))
	}
	return opts, nil
}

// natsSession is a connection plus, when used, the embedded server.
type natsSession struct {
	NC       *nats.Conn
	URL      string
	embedded *streams.Embedded
	urlFile  string
}

// Close drains the connection (in-flight acks and publishes finish), then
// stops the embedded server.
func (s *natsSession) Close() {
	if s.NC != nil && !s.NC.IsClosed() {
		closed := make(chan struct{})
		s.NC.SetClosedHandler(func(*nats.Conn) { close(closed) })
		if err := s.NC.Drain(); err == nil {
			select {
			case <-closed:
			case <-time.After(10 * time.Second):
			}
		}
		s.NC.Close()
	}
	if s.embedded != nil {
		s.embedded.Shutdown()
		_ = os.Remove(s.urlFile)
	}
}

// connect dials --nats-url, or starts the embedded server when it is
// empty and embedding is allowed, telling the user how to reach it.
func (f *natsConnFlags) connect(allowEmbedded bool, out io.Writer, log *slog.Logger) (*natsSession, error) {
	opts, err := f.options()
	if err != nil {
		return nil, err
	}
	s := &natsSession{URL: f.URL}
	if f.URL == "" {
		if !allowEmbedded {
			return nil, errors.New("--nats-url (IMBI_NATS_URL) is required")
		}
		s.embedded, err = streams.StartEmbedded(streams.EmbeddedConfig{DataDir: f.DataDir, Port: f.Port})
		if err != nil {
			return nil, err
		}
		f.Embedded = true
		s.URL = s.embedded.URL()
		s.urlFile = filepath.Join(f.DataDir, URLFile)
		if err := os.WriteFile(s.urlFile, []byte(s.URL+"\n"), 0o600); err != nil && log != nil {
			log.Warn("could not write the embedded server URL file", "path", s.urlFile, "error", err)
		}
		fmt.Fprintf(out, "embedded NATS JetStream server listening on %s (data dir %s)\n", s.URL, f.DataDir)
		fmt.Fprintf(out, "  publish with: imbi-worker publish --nats-url %s ...   or IMBI_NATS_URL=%s\n", s.URL, s.URL)
	}
	s.NC, err = nats.Connect(s.URL, opts...)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("connect to NATS %s: %w", s.URL, err)
	}
	return s, nil
}
