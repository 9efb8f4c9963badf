package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
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
	// InboxPrefix replaces nats.go's "_INBOX" for reply subjects (run
	// sets WorkerInboxPrefix), so NATS permissions can keep publishers
	// out of the worker's replies (deploy/nats/permissions.conf).
	InboxPrefix string
}

// WorkerInboxPrefix is the reply-subject prefix of `imbi-worker run`.
const WorkerInboxPrefix = "_INBOX_imbi_worker"

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

// options turns the flags into nats.go options. Every file is read and
// checked here, before dialling, so a wrong file fails naming its flag:
// nats.go reads them only inside Connect (creds: at CONNECT time), where
// its errors name neither the flag nor, for a missing creds file, which
// flag's file it was.
func (f *natsConnFlags) options() ([]nats.Option, error) {
	opts := []nats.Option{
		nats.Name(f.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
	}
	if f.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(f.InboxPrefix))
	}
	if f.Creds != "" {
		if err := checkCreds(f.Creds); err != nil {
			return nil, fmt.Errorf("--nats-creds %s: %w", f.Creds, err)
		}
		opts = append(opts, nats.UserCredentials(f.Creds))
	}
	if f.NKey != "" {
		o, err := nats.NkeyOptionFromSeed(f.NKey)
		if err != nil {
			return nil, fmt.Errorf("--nats-nkey %s: %w", f.NKey, err)
		}
		opts = append(opts, o)
	}
	if (f.TLSCert == "") != (f.TLSKey == "") {
		return nil, errors.New("--nats-tls-cert and --nats-tls-key go together")
	}
	if f.TLSCert != "" {
		o := nats.ClientCert(f.TLSCert, f.TLSKey)
		// Applying the option loads the pair (as Connect will).
		if err := o(&nats.Options{}); err != nil {
			return nil, fmt.Errorf("--nats-tls-cert %s / --nats-tls-key %s: %w", f.TLSCert, f.TLSKey, err)
		}
		opts = append(opts, o)
	}
	if f.TLSCA != "" {
		o := nats.RootCAs(f.TLSCA)
		if err := o(&nats.Options{}); err != nil {
			return nil, fmt.Errorf("--nats-tls-ca %s: %w", f.TLSCA, err)
		}
		opts = append(opts, o)
	}
	return opts, nil
}

// checkCreds checks that a .creds file holds a user JWT and that user's
// nkey seed. Besides a clear error, this keeps a file without a JWT block
// off the wire: nats.go then sends the whole file as the JWT, so an nkey
// seed file given to --nats-creds would send its seed to the server. The
// errors never quote the file.
func checkCreds(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	defer func() {
		for i := range b {
			b[i] = 'x'
		}
	}()
	// bytes, not a string copy of the file: b is wiped, a string is not.
	if !bytes.Contains(b, []byte("-----BEGIN NATS USER JWT-----")) {
		return errors.New("no user JWT (want a .creds file with a -----BEGIN NATS USER JWT----- block; for a bare nkey seed use --nats-nkey)")
	}
	token, err := nkeys.ParseDecoratedJWT(b)
	if err != nil {
		return errors.New("the NATS USER JWT block is not a valid user JWT")
	}
	claims, err := jwt.DecodeUserClaims(token)
	if err != nil {
		return errors.New("the NATS USER JWT block is not a valid user JWT")
	}
	kp, err := nkeys.ParseDecoratedUserNKey(b)
	if err != nil {
		return fmt.Errorf("no user nkey seed: %w", err)
	}
	defer kp.Wipe()
	pub, err := kp.PublicKey()
	if err != nil {
		return fmt.Errorf("user nkey seed: %w", err)
	}
	if pub != claims.Subject {
		return errors.New("the nkey seed is not the JWT user's (JWT and seed of different users)")
	}
	return nil
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
		// Redacted: a user:password in the URL is a secret too.
		return nil, connectError(s.URL, err)
	}
	return s, nil
}

// connectError reports a failed connect without any secret of rawURLs: a
// URL that does not parse is named only in redacted form (net/url's
// error quotes the URL and fragments of it, the password included), and
// every password or token of rawURLs is cut out of what remains.
func connectError(rawURLs string, err error) error {
	var urlErr *url.Error
	msg := err.Error()
	if errors.As(err, &urlErr) {
		msg = "invalid URL (it does not parse; check the host and port, and %-escape special characters in user:password)"
	}
	return &redactedError{
		msg: scrubSecrets(fmt.Sprintf("connect to NATS %s: %s", redactNATSURL(rawURLs), msg), urlSecrets(rawURLs)),
		err: err,
	}
}

// redactedError is an error whose text had secrets cut out. It matches
// what the original matches (errors.Is) but does not unwrap to it, so the
// original text cannot be printed by accident.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string        { return e.msg }
func (e *redactedError) Is(target error) bool { return errors.Is(e.err, target) }

// urlSecrets returns the secrets in a comma-separated URL list, found
// without parsing (the URL may not parse): of each URL's user info, what
// lies between "scheme://" and the last "@", the part after the first ":"
// (a password), or all of it (a token). The unescaped form is returned
// too.
func urlSecrets(rawURLs string) []string {
	var out []string
	for _, u := range strings.Split(rawURLs, ",") {
		at := strings.LastIndex(u, "@")
		if at < 0 {
			continue
		}
		info := u[:at]
		if i := strings.Index(info, "://"); i >= 0 {
			info = info[i+3:]
		}
		if _, pw, ok := strings.Cut(info, ":"); ok {
			info = pw
		}
		if info == "" {
			continue
		}
		out = append(out, info)
		if plain, err := url.PathUnescape(info); err == nil && plain != info {
			out = append(out, plain)
		}
	}
	return out
}

// scrubSecrets replaces every secret in msg, as it is and as Go quotes it
// (%q), with [redacted].
func scrubSecrets(msg string, secrets []string) string {
	for _, sec := range secrets {
		quoted := strconv.Quote(sec)
		msg = strings.ReplaceAll(msg, quoted[1:len(quoted)-1], "[redacted]")
		msg = strings.ReplaceAll(msg, sec, "[redacted]")
	}
	return msg
}
