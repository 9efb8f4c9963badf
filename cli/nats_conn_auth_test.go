package cli

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/require"
)

// These tests run the real commands against in-process nats-servers that
// demand each kind of authentication --nats-creds, --nats-nkey and
// --nats-tls-* offer. Every mode has a "no option → rejected" row, so a
// passing row proves the option was used, and a positive row that
// provisions (streams, dead-letter stream, done bucket, consumer) over
// JetStream, so the option carries more than a bare CONNECT.

// authServer starts nats-server with JetStream on 127.0.0.1 at a free port
// with the auth settings already in o, and returns a nats:// URL (never
// tls://: TLS must come from the client's options or the server's INFO).
func authServer(t *testing.T, o *server.Options) string {
	t.Helper()
	o.Host = "127.0.0.1"
	o.Port = server.RANDOM_PORT
	o.JetStream = true
	o.StoreDir = t.TempDir()
	o.NoSigs = true
	o.NoLog = os.Getenv("NATS_TEST_LOG") == "" // NATS_TEST_LOG=1: the server logs to stderr
	srv, err := server.NewServer(o)
	require.NoError(t, err)
	if !o.NoLog {
		srv.ConfigureLogger()
	}
	go srv.Start()
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	require.True(t, srv.ReadyForConnections(10*time.Second), "nats-server did not start")
	return fmt.Sprintf("nats://127.0.0.1:%d", srv.Addr().(*net.TCPAddr).Port)
}

// runNATSCmd runs the root command with args; stdout, stderr and the error.
func runNATSCmd(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, errOut syncBuffer
	root := NewRootCmd()
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

// requireNoSecrets: no secret in the output, the log or the error.
func requireNoSecrets(t *testing.T, secrets []string, out, errOut string, err error) {
	t.Helper()
	text := out + "\n" + errOut
	if err != nil {
		text += "\n" + err.Error()
	}
	for _, s := range secrets {
		require.NotEmpty(t, s)
		require.NotContains(t, text, s, "a secret leaked into the output or error")
	}
}

// requireProvisioned checks, over a separate connection, that streams
// apply created the work stream, the dead-letter stream, the done-marker
// bucket and the durable consumer.
func requireProvisioned(t *testing.T, url string, opts ...nats.Option) {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, name := range []string{"IMBI_ACTIONS", "IMBI_ACTIONS_DLQ"} {
		_, err := js.Stream(ctx, name)
		require.NoError(t, err, "stream %s", name)
	}
	_, err = js.Consumer(ctx, "IMBI_ACTIONS", "imbi-worker")
	require.NoError(t, err)
	_, err = js.KeyValue(ctx, "imbi_actions_done")
	require.NoError(t, err)
}

// authCase is one `streams apply` run with some connection flags.
type authCase struct {
	name string
	args []string
	// want: substrings of the error, all of them (lower-cased); none: the
	// command succeeds and provisions.
	want []string
}

// runAuthCases runs each case against a fresh server from newServer, so a
// positive row's provisioning is its own; adminOpts let the check connect.
func runAuthCases(t *testing.T, newServer func(t *testing.T) string, cases []authCase, secrets []string, adminOpts ...nats.Option) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			url := newServer(t)
			args := append([]string{"streams", "apply", "--nats-url", url, "--timeout", "10s"}, c.args...)
			out, errOut, err := runNATSCmd(t, args...)
			requireNoSecrets(t, secrets, out, errOut, err)
			if len(c.want) == 0 {
				require.NoError(t, err, errOut)
				require.Contains(t, out, "IMBI_ACTIONS_DLQ")
				require.Contains(t, out, "done-markers")
				requireProvisioned(t, url, adminOpts...)
				return
			}
			require.Error(t, err, "the server should have refused: %s", out)
			for _, w := range c.want {
				require.Contains(t, strings.ToLower(err.Error()), strings.ToLower(w))
			}
		})
	}
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, b, 0o600))
	return p
}

// testCA is a throwaway ECDSA P-256 certificate authority.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // PEM of cert
}

var certSerial int64

func newTestCA(t *testing.T, dir, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	certSerial++
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(certSerial),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	file := writeFile(t, dir, name+".pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return &testCA{cert: cert, key: key, file: file}
}

// issue writes a leaf certificate (server: SAN 127.0.0.1 and localhost)
// and its key; the file paths.
func (ca *testCA) issue(t *testing.T, dir, name string, serverCert bool) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	certSerial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(certSerial),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if serverCert {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	return writeFile(t, dir, name+".pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		writeFile(t, dir, name+"-key.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
}

// TestNATSTLS: a server that requires TLS and verifies client
// certificates (mutual TLS) against a throwaway CA.
func TestNATSTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "ca")
	srvCert, srvKey := ca.issue(t, dir, "server", true)
	cliCert, cliKey := ca.issue(t, dir, "client", false)
	other := newTestCA(t, dir, "other-ca")
	strangerCert, strangerKey := other.issue(t, dir, "stranger", false)
	_, otherKey := ca.issue(t, dir, "client2", false)

	newServer := func(t *testing.T) string {
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: srvCert, KeyFile: srvKey, CaFile: ca.file, Verify: true})
		require.NoError(t, err)
		return authServer(t, &server.Options{TLSConfig: tc, TLS: true, TLSVerify: true, TLSTimeout: 2})
	}
	const unknownCA = "certificate signed by unknown authority"
	runAuthCases(t, newServer, []authCase{
		{name: "no option → rejected", want: []string{unknownCA}},
		{name: "CA only, no client certificate → rejected", args: []string{"--nats-tls-ca", ca.file},
			want: []string{"tls"}}, // "certificate required" or a broken pipe: the server's alert races the client's CONNECT
		{name: "CA and client certificate", args: []string{"--nats-tls-ca", ca.file, "--nats-tls-cert", cliCert, "--nats-tls-key", cliKey}},
		{name: "client certificate without CA", args: []string{"--nats-tls-cert", cliCert, "--nats-tls-key", cliKey},
			want: []string{unknownCA}},
		{name: "wrong CA", args: []string{"--nats-tls-ca", other.file, "--nats-tls-cert", cliCert, "--nats-tls-key", cliKey},
			want: []string{unknownCA}},
		{name: "client certificate of another CA", args: []string{"--nats-tls-ca", ca.file, "--nats-tls-cert", strangerCert, "--nats-tls-key", strangerKey},
			want: []string{"tls"}},
		{name: "certificate without key", args: []string{"--nats-tls-ca", ca.file, "--nats-tls-cert", cliCert},
			want: []string{"--nats-tls-cert and --nats-tls-key go together"}},
		{name: "key without certificate", args: []string{"--nats-tls-ca", ca.file, "--nats-tls-key", cliKey},
			want: []string{"--nats-tls-cert and --nats-tls-key go together"}},
		{name: "key of another certificate", args: []string{"--nats-tls-ca", ca.file, "--nats-tls-cert", cliCert, "--nats-tls-key", otherKey},
			want: []string{"--nats-tls-cert", "private key does not match public key"}},
		{name: "missing CA file", args: []string{"--nats-tls-ca", filepath.Join(dir, "nope.pem")},
			want: []string{"--nats-tls-ca", "nope.pem"}},
	}, nil, nats.RootCAs(ca.file), nats.ClientCert(cliCert, cliKey))
}

// nkeySeedFile writes a fresh key pair's seed; the public key, the seed
// and the file.
func nkeySeedFile(t *testing.T, dir, name string, create func() (nkeys.KeyPair, error)) (string, string, string) {
	t.Helper()
	kp, err := create()
	require.NoError(t, err)
	pub, err := kp.PublicKey()
	require.NoError(t, err)
	seed, err := kp.Seed()
	require.NoError(t, err)
	return pub, string(seed), writeFile(t, dir, name, append(seed, '\n'))
}

// TestNATSNKey: a server with one nkey user.
func TestNATSNKey(t *testing.T) {
	dir := t.TempDir()
	pub, seed, seedFile := nkeySeedFile(t, dir, "user.nk", nkeys.CreateUser)
	_, otherSeed, otherFile := nkeySeedFile(t, dir, "other.nk", nkeys.CreateUser)
	_, accountSeed, accountFile := nkeySeedFile(t, dir, "account.nk", nkeys.CreateAccount)
	notSeed := writeFile(t, dir, "not-a-seed.txt", []byte("hello, this is not an nkey seed\n"))

	newServer := func(t *testing.T) string {
		return authServer(t, &server.Options{Nkeys: []*server.NkeyUser{{Nkey: pub}}})
	}
	opt, err := nats.NkeyOptionFromSeed(seedFile)
	require.NoError(t, err)
	runAuthCases(t, newServer, []authCase{
		{name: "no option → rejected", want: []string{"authorization violation"}},
		{name: "right seed", args: []string{"--nats-nkey", seedFile}},
		{name: "another user's seed", args: []string{"--nats-nkey", otherFile}, want: []string{"authorization violation"}},
		{name: "not a seed", args: []string{"--nats-nkey", notSeed}, want: []string{"--nats-nkey", "not-a-seed.txt"}},
		{name: "account seed, not a user seed", args: []string{"--nats-nkey", accountFile},
			want: []string{"--nats-nkey", "not a valid nkey user seed"}},
		{name: "missing file", args: []string{"--nats-nkey", filepath.Join(dir, "nope.nk")},
			want: []string{"--nats-nkey", "nope.nk", "no such file"}},
	}, []string{seed, otherSeed, accountSeed}, opt)
}

// operatorSetup is an operator, a JetStream-enabled account and a user of
// it, as the .creds file of that user.
type operatorSetup struct {
	operator *jwt.OperatorClaims
	system   string // public key
	sysJWT   string
	account  string // public key
	accJWT   string
	creds    string // file
	seed     string // user seed in the creds file
	userJWT  string
}

func newOperatorSetup(t *testing.T, dir string) *operatorSetup {
	t.Helper()
	okp, err := nkeys.CreateOperator()
	require.NoError(t, err)
	opub, err := okp.PublicKey()
	require.NoError(t, err)
	// JetStream in operator mode needs a system account.
	skp, err := nkeys.CreateAccount()
	require.NoError(t, err)
	spub, err := skp.PublicKey()
	require.NoError(t, err)
	oc := jwt.NewOperatorClaims(opub)
	oc.Name = "test-operator"
	oc.SystemAccount = spub
	ojwt, err := oc.Encode(okp)
	require.NoError(t, err)
	operator, err := jwt.DecodeOperatorClaims(ojwt)
	require.NoError(t, err)
	sc := jwt.NewAccountClaims(spub)
	sc.Name = "SYS"
	sjwt, err := sc.Encode(okp)
	require.NoError(t, err)

	akp, err := nkeys.CreateAccount()
	require.NoError(t, err)
	apub, err := akp.PublicKey()
	require.NoError(t, err)
	ac := jwt.NewAccountClaims(apub)
	ac.Name = "imbi"
	ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
	ajwt, err := ac.Encode(okp)
	require.NoError(t, err)

	s := &operatorSetup{operator: operator, system: spub, sysJWT: sjwt, account: apub, accJWT: ajwt}
	s.creds, s.seed, s.userJWT = userCreds(t, dir, "user.creds", akp)
	return s
}

// userCreds writes the .creds file of a new user signed by the account
// key; the file, the user's seed and JWT.
func userCreds(t *testing.T, dir, name string, account nkeys.KeyPair) (string, string, string) {
	t.Helper()
	ukp, err := nkeys.CreateUser()
	require.NoError(t, err)
	upub, err := ukp.PublicKey()
	require.NoError(t, err)
	seed, err := ukp.Seed()
	require.NoError(t, err)
	uc := jwt.NewUserClaims(upub)
	uc.Name = "worker"
	ujwt, err := uc.Encode(account)
	require.NoError(t, err)
	b, err := jwt.FormatUserConfig(ujwt, seed)
	require.NoError(t, err)
	return writeFile(t, dir, name, b), string(seed), ujwt
}

func (s *operatorSetup) server(t *testing.T) string {
	t.Helper()
	res := &server.MemAccResolver{}
	require.NoError(t, res.Store(s.system, s.sysJWT))
	require.NoError(t, res.Store(s.account, s.accJWT))
	return authServer(t, &server.Options{TrustedOperators: []*jwt.OperatorClaims{s.operator}, SystemAccount: s.system, AccountResolver: res})
}

// TestNATSCreds: operator mode (JWT) with a memory resolver holding one
// account with JetStream enabled.
func TestNATSCreds(t *testing.T) {
	dir := t.TempDir()
	op := newOperatorSetup(t, dir)
	// A user of an account the operator never signed.
	stranger, err := nkeys.CreateAccount()
	require.NoError(t, err)
	strangerCreds, strangerSeed, strangerJWT := userCreds(t, dir, "stranger.creds", stranger)
	notCreds := writeFile(t, dir, "not-creds.txt", []byte("hello, these are not credentials\n"))
	// An nkey seed file given as --nats-creds: nats.go alone would send
	// the whole file, the seed, as the JWT.
	_, nkSeed, nkFile := nkeySeedFile(t, dir, "user.nk", nkeys.CreateUser)
	// The right JWT with a seed of another user.
	other, err := nkeys.CreateUser()
	require.NoError(t, err)
	otherSeed, err := other.Seed()
	require.NoError(t, err)
	b, err := os.ReadFile(op.creds)
	require.NoError(t, err)
	require.Contains(t, string(b), op.seed)
	mismatched := writeFile(t, dir, "mismatched.creds", []byte(strings.Replace(string(b), op.seed, string(otherSeed), 1)))

	runAuthCases(t, op.server, []authCase{
		{name: "no option → rejected", want: []string{"authorization violation"}},
		{name: "right creds", args: []string{"--nats-creds", op.creds}},
		{name: "user of another account", args: []string{"--nats-creds", strangerCreds}, want: []string{"authorization violation"}},
		{name: "missing file", args: []string{"--nats-creds", filepath.Join(dir, "nope.creds")},
			want: []string{"--nats-creds", "nope.creds", "no such file"}},
		{name: "not a creds file", args: []string{"--nats-creds", notCreds}, want: []string{"--nats-creds", "not-creds.txt", "no user JWT"}},
		{name: "nkey seed file as creds", args: []string{"--nats-creds", nkFile}, want: []string{"--nats-creds", "user.nk", "no user JWT"}},
		{name: "seed of another user", args: []string{"--nats-creds", mismatched},
			want: []string{"--nats-creds", "mismatched.creds", "seed is not the JWT user's"}},
	}, []string{op.seed, op.userJWT, strangerSeed, strangerJWT, nkSeed, string(otherSeed)}, nats.UserCredentials(op.creds))
}

// TestNATSOptionErrorsInEveryCommand: a bad connection option is named by
// every command that connects, not only streams apply.
func TestNATSOptionErrorsInEveryCommand(t *testing.T) {
	dir := t.TempDir()
	notSeed := writeFile(t, dir, "not-a-seed.txt", []byte("nope\n"))
	event := writeFile(t, dir, "event.json", []byte(`{"specversion":"1.0","id":"auth-1","source":"/s","type":"io.imbi.webhook.action.v1","data":{"rule":{"handler":"nope#act"},"context":{"project_id":"p","project_slug":"s","org_slug":"o"},"event":{}}}`))
	url := "nats://127.0.0.1:1" // never dialled: the options fail first
	for _, cmd := range [][]string{
		{"streams", "apply"},
		{"publish", "--subject", "imbi.actions.nope.act", event},
		{"dlq", "stats"},
		{"run", "--data-dir", dir},
	} {
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"--nats-tls-cert", "cert.pem"}, "--nats-tls-cert and --nats-tls-key go together"},
			{[]string{"--nats-nkey", notSeed}, "--nats-nkey"},
			{[]string{"--nats-creds", filepath.Join(dir, "nope.creds")}, "--nats-creds"},
		} {
			t.Run(cmd[0]+" "+c.args[0], func(t *testing.T) {
				args := append(append(append([]string{}, cmd...), "--nats-url", url), c.args...)
				_, _, err := runNATSCmd(t, args...)
				require.ErrorContains(t, err, c.want)
				require.NotContains(t, err.Error(), "%!")
			})
		}
	}
}

// TestNATSSecretsNotLogged: `run` against the JWT and the nkey servers,
// at debug level, never prints the seed or the JWT.
func TestNATSSecretsNotLogged(t *testing.T) {
	dir := t.TempDir()
	op := newOperatorSetup(t, dir)
	pub, seed, seedFile := nkeySeedFile(t, dir, "user.nk", nkeys.CreateUser)
	for _, c := range []struct {
		name    string
		url     string
		args    []string
		secrets []string
	}{
		{"creds", op.server(t), []string{"--nats-creds", op.creds}, []string{op.seed, op.userJWT}},
		{"nkey", authServer(t, &server.Options{Nkeys: []*server.NkeyUser{{Nkey: pub}}}), []string{"--nats-nkey", seedFile}, []string{seed}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := startRun(t, append([]string{"run", "--nats-url", c.url, "--data-dir", "",
				"--shutdown-grace", "1s", "--log-level", "debug", "--log-format", "json"}, c.args...)...)
			err := r.stop()
			require.NoError(t, err, r.errOut.String())
			requireNoSecrets(t, c.secrets, r.out.String(), r.errOut.String(), err)
		})
	}
}

// TestNATSURLPasswordRedacted: a user:password in --nats-url stays out of
// the connect error of every command that dials NATS.
func TestNATSURLPasswordRedacted(t *testing.T) {
	url := "nats://worker:hunter2-secret@127.0.0.1:1" // nothing listens there
	for _, cmd := range [][]string{{"streams", "apply"}, {"run", "--data-dir", t.TempDir()}, {"dlq", "stats"}} {
		t.Run(cmd[0], func(t *testing.T) {
			out, errOut, err := runNATSCmd(t, append(append([]string{}, cmd...), "--nats-url", url)...)
			require.ErrorContains(t, err, "connect to NATS nats://[redacted]@127.0.0.1:1")
			requireNoSecrets(t, []string{"hunter2-secret"}, out, errOut, err)
		})
	}
}
