package cli

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/wire"
)

// permissionServer starts a nats-server whose users get the roles of
// deploy/nats/permissions.conf (copied beside the generated config, which
// includes it as nats-server.conf does) and returns its URL and its log of
// errors (permission violations among them).
func permissionServer(t *testing.T, dir, gatewayPub, workerPub, operatorPub string) (string, *serverErrors) {
	t.Helper()
	perms, err := os.ReadFile(filepath.Join("..", "deploy", "nats", "permissions.conf"))
	require.NoError(t, err)
	writeFile(t, dir, "permissions.conf", perms)
	conf := fmt.Sprintf(`listen: "127.0.0.1:-1"
jetstream { store_dir: %q }
include ./permissions.conf
authorization {
  users: [
    { nkey: %s, permissions: $IMBI_PUBLISHER_PERMISSIONS }
    { nkey: %s, permissions: $IMBI_WORKER_PERMISSIONS }
    { nkey: %s }
  ]
}
`, filepath.Join(dir, "js"), gatewayPub, workerPub, operatorPub)
	path := writeFile(t, dir, "nats-server.conf", []byte(conf))
	o, err := server.ProcessConfigFile(path)
	require.NoError(t, err)
	o.NoSigs = true
	srv, err := server.NewServer(o)
	require.NoError(t, err)
	errs := &serverErrors{echo: os.Getenv("NATS_TEST_LOG") != ""}
	srv.SetLogger(errs, false, false)
	go srv.Start()
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	require.True(t, srv.ReadyForConnections(10*time.Second))
	return fmt.Sprintf("nats://127.0.0.1:%d", srv.Addr().(*net.TCPAddr).Port), errs
}

// permissionRoles starts a permissionServer for three new nkey users and
// returns its URL, its error log and the users' seed files: the gateway
// (publisher role), the worker (worker role) and an operator (no limits).
func permissionRoles(t *testing.T) (url string, log *serverErrors, gatewaySeed, workerSeed, operatorSeed string) {
	t.Helper()
	dir := t.TempDir()
	gwPub, _, gatewaySeed := nkeySeedFile(t, dir, "gateway.nk", nkeys.CreateUser)
	wPub, _, workerSeed := nkeySeedFile(t, dir, "worker.nk", nkeys.CreateUser)
	opPub, _, operatorSeed := nkeySeedFile(t, dir, "operator.nk", nkeys.CreateUser)
	url, log = permissionServer(t, dir, gwPub, wPub, opPub)
	return url, log, gatewaySeed, workerSeed, operatorSeed
}

// serverErrors is a nats-server logger keeping the errors it logs (a
// client's permission violation: "Publish Violation - ..."); with echo
// (NATS_TEST_LOG set) it prints every line too.
type serverErrors struct {
	echo bool
	mu   sync.Mutex
	errs []string
}

func (l *serverErrors) print(level, format string, v ...any) {
	if l.echo {
		fmt.Fprintf(os.Stderr, "nats-server "+level+" "+format+"\n", v...)
	}
}

func (l *serverErrors) Noticef(format string, v ...any) { l.print("[INF]", format, v...) }
func (l *serverErrors) Warnf(format string, v ...any)   { l.print("[WRN]", format, v...) }
func (l *serverErrors) Debugf(format string, v ...any)  { l.print("[DBG]", format, v...) }
func (l *serverErrors) Tracef(format string, v ...any)  { l.print("[TRC]", format, v...) }
func (l *serverErrors) Fatalf(format string, v ...any)  { l.Errorf(format, v...) }
func (l *serverErrors) Errorf(format string, v ...any) {
	l.print("[ERR]", format, v...)
	l.mu.Lock()
	l.errs = append(l.errs, fmt.Sprintf(format, v...))
	l.mu.Unlock()
}

// violations returns the permission violations logged so far.
func (l *serverErrors) violations() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.errs {
		if strings.Contains(e, "Violation") {
			out = append(out, e)
		}
	}
	return out
}

// violations collects the server's permission errors for one connection.
type violations struct {
	mu   sync.Mutex
	errs []string
}

func (v *violations) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	v.mu.Lock()
	v.errs = append(v.errs, err.Error())
	v.mu.Unlock()
}

func (v *violations) has(s string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, e := range v.errs {
		if strings.Contains(strings.ToLower(e), strings.ToLower(s)) {
			return true
		}
	}
	return false
}

func nkeyConn(t *testing.T, url, seedFile string, v *violations, opts ...nats.Option) *nats.Conn {
	t.Helper()
	o, err := nats.NkeyOptionFromSeed(seedFile)
	require.NoError(t, err)
	opts = append(opts, o, nats.ErrorHandler(v.handler))
	nc, err := nats.Connect(url, opts...)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc
}

// TestNATSPermissionsConfig: with deploy/nats/permissions.conf loaded into
// a real nats-server, `imbi-worker run` with the worker role provisions,
// consumes, settles and dead-letters, and can write done-markers; the
// publisher role can publish work and nothing else, and cannot listen to
// the worker's replies.
func TestNATSPermissionsConfig(t *testing.T) {
	url, _, gwSeed, wSeed, opSeed := permissionRoles(t)

	// The worker: provisions everything and starts consuming.
	w := startRun(t, workerArgs(url, wSeed)...)
	errOut := &w.errOut
	require.NotContains(t, strings.ToLower(errOut.String()), "permissions violation")

	// The publisher: work subjects only.
	var gwV violations
	gw := nkeyConn(t, url, gwSeed, &gwV)
	gwJS, err := jetstream.New(gw)
	require.NoError(t, err)
	pctx, pcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer pcancel()
	event := `{"specversion":"1.0","id":"perm-1","source":"/imbi-gateway/webhooks/wh-1","type":"` + wire.EventType + `","subject":"cli-test#greet",` +
		`"datacontenttype":"application/json","data":{"rule":{"id":"r","handler":"cli-test#greet","handler_config":{"greeting":"hi"},"ordinal":0},` +
		`"context":{"project_id":"p","project_slug":"s","org_slug":"o"},"event":{"type":"push","third_party_service":"github","attributed_to":"",` +
		`"metadata":{"webhook_id":"wh-1","headers":{}},"payload":{}}}}`
	msg := nats.NewMsg(wire.DefaultSubjectPrefix + ".cli-test.greet")
	msg.Header.Set(wire.HeaderContentType, wire.ContentTypeCE)
	msg.Data = []byte(event)
	_, err = gwJS.PublishMsg(pctx, msg)
	require.NoError(t, err, "the publisher role publishes work")

	for _, subj := range []string{
		wire.DefaultDLQPrefix + ".cli-test.greet", // forge a dead letter
		"$JS.API.STREAM.DELETE.IMBI_ACTIONS",      // drop the work
		"$JS.API.STREAM.PURGE.IMBI_ACTIONS_DLQ",   // hide dead letters
		"$KV.imbi_actions_done.perm-2",            // mark an event done
		"$JS.ACK.IMBI_ACTIONS.imbi-worker.x",      // ack others' work
		"imbi.outcomes.cli-test.greet",            // forge an outcome
		"imbi.plugins.v1.run.cli-test.greet",      // call a plugin host
	} {
		require.NoError(t, gw.Publish(subj, []byte("x")))
		require.NoError(t, gw.Flush())
		require.Eventually(t, func() bool { return gwV.has(`Permissions Violation for Publish to "` + subj + `"`) },
			5*time.Second, 10*time.Millisecond, "the publisher role may not publish to %s", subj)
	}
	_, err = gw.Subscribe(WorkerInboxPrefix+".>", func(*nats.Msg) {})
	require.NoError(t, err)
	require.NoError(t, gw.Flush())
	require.Eventually(t, func() bool {
		return gwV.has(`Permissions Violation for Subscription to "` + WorkerInboxPrefix + `.>"`)
	}, 5*time.Second, 10*time.Millisecond, "the publisher role may not read the worker's replies")

	// The worker settled the message: no credential store, so the action
	// needing a token is dead-lettered (credentials_missing) and the work
	// stream is empty.
	var opV violations
	op := nkeyConn(t, url, opSeed, &opV)
	opJS, err := jetstream.New(op)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		dlq, err := opJS.Stream(pctx, wire.DefaultDLQStream)
		if err != nil {
			return false
		}
		info, err := dlq.Info(pctx)
		return err == nil && info.State.Msgs == 1
	}, 15*time.Second, 20*time.Millisecond, "the worker role dead-letters:\n%s", errOut.String())
	last, err := opJS.Stream(pctx, wire.DefaultDLQStream)
	require.NoError(t, err)
	m, err := last.GetLastMsgForSubject(pctx, wire.DefaultDLQPrefix+".>")
	require.NoError(t, err)
	require.Equal(t, string(wire.ReasonCredentialsMissing), m.Header.Get(wire.DLQReason))
	work, err := opJS.Stream(pctx, wire.DefaultStream)
	require.NoError(t, err)
	// The ack follows the dead letter and its outcome event (v1.1 §C).
	require.Eventually(t, func() bool {
		info, err := work.Info(pctx)
		return err == nil && info.State.Msgs == 0
	}, 10*time.Second, 20*time.Millisecond, "the worker acked (work-queue stream)")
	outs, err := opJS.Stream(pctx, wire.DefaultOutcomesStream)
	require.NoError(t, err, "the worker role provisions the outcome stream")
	om, err := outs.GetLastMsgForSubject(pctx, wire.DefaultOutcomesPrefix+".cli-test.greet")
	require.NoError(t, err, "the worker role publishes the outcome event")
	require.Contains(t, string(om.Data), `"status":"dead_lettered"`)

	// The worker role writes and reads done-markers (a success's last step).
	var wV violations
	wc := nkeyConn(t, url, wSeed, &wV, nats.CustomInboxPrefix(WorkerInboxPrefix))
	wJS, err := jetstream.New(wc)
	require.NoError(t, err)
	kv, err := wJS.KeyValue(pctx, "imbi_actions_done")
	require.NoError(t, err)
	_, err = kv.Put(pctx, "perm-2", []byte("1"))
	require.NoError(t, err)
	_, err = kv.Get(pctx, "perm-2")
	require.NoError(t, err)
	require.False(t, wV.has("violation"))
	require.NotContains(t, strings.ToLower(errOut.String()), "permissions violation")
}

// workerArgs runs the worker on url with the nkey seed file seed.
func workerArgs(url, seed string) []string {
	return []string{"run", "--nats-url", url, "--nats-nkey", seed, "--data-dir", "",
		"--admin-addr", "127.0.0.1:0", "--shutdown-grace", "1s", "--log-format", "json"}
}

// TestWorkerStopsWithinPermissions: a worker with the worker role starts
// and stops without one permission violation. The role may not DELETE
// consumers, so the lane cache leaves its consumer for the server to
// remove (lanes.Cache).
func TestWorkerStopsWithinPermissions(t *testing.T) {
	url, serverLog, _, wSeed, _ := permissionRoles(t)

	w := startRun(t, workerArgs(url, wSeed)...)
	require.Empty(t, serverLog.violations(), "starting")
	require.NoError(t, w.stop())
	// A denied publish is only seen by the server: give its log a moment.
	time.Sleep(200 * time.Millisecond)
	require.Empty(t, serverLog.violations(), "stopping:\n%s", w.errOut.String())
}

// TestNATSServerConfigShipped: deploy/nats/nats-server.conf, with its
// placeholders filled (keys, certificate paths, store and ports), loads into
// a real nats-server that demands TLS and an nkey: `streams apply` works
// with the operator's seed and the CA, and fails without either.
func TestNATSServerConfigShipped(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "ca")
	srvCert, srvKey := ca.issue(t, dir, "server", true)
	gwPub, _, _ := nkeySeedFile(t, dir, "gateway.nk", nkeys.CreateUser)
	wPub, _, _ := nkeySeedFile(t, dir, "worker.nk", nkeys.CreateUser)
	opPub, _, opSeed := nkeySeedFile(t, dir, "operator.nk", nkeys.CreateUser)
	perms, err := os.ReadFile(filepath.Join("..", "deploy", "nats", "permissions.conf"))
	require.NoError(t, err)
	writeFile(t, dir, "permissions.conf", perms)
	raw, err := os.ReadFile(filepath.Join("..", "deploy", "nats", "nats-server.conf"))
	require.NoError(t, err)
	conf := strings.NewReplacer(
		"\nport: 4222", "\nlisten: \"127.0.0.1:-1\"",
		"http_port: 8222", "http: \"127.0.0.1:-1\"",
		"store_dir: /data", "store_dir: "+strconvQuote(filepath.Join(dir, "js")),
		"/etc/nats/tls/server.crt", srvCert, "/etc/nats/tls/server.key", srvKey, "/etc/nats/tls/ca.crt", ca.file,
		"REPLACE-gateway-public-nkey", gwPub, "REPLACE-worker-public-nkey", wPub, "REPLACE-operator-public-nkey", opPub,
	).Replace(string(raw))
	require.NotContains(t, conf, "nkey: REPLACE")
	t.Setenv("SERVER_NAME", "nats-test")
	path := writeFile(t, dir, "nats-server.conf", []byte(conf))
	o, err := server.ProcessConfigFile(path)
	require.NoError(t, err)
	require.NotNil(t, o.TLSConfig, "TLS is on")
	require.Len(t, o.Nkeys, 3)
	o.NoSigs, o.NoLog = true, true
	srv, err := server.NewServer(o)
	require.NoError(t, err)
	go srv.Start()
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	require.True(t, srv.ReadyForConnections(10*time.Second))
	url := fmt.Sprintf("nats://127.0.0.1:%d", srv.Addr().(*net.TCPAddr).Port)

	_, _, err = runNATSCmd(t, "streams", "apply", "--nats-url", url, "--nats-nkey", opSeed, "--nats-tls-ca", ca.file)
	require.NoError(t, err)
	_, _, err = runNATSCmd(t, "streams", "apply", "--nats-url", url, "--nats-tls-ca", ca.file)
	require.Error(t, err, "no nkey: rejected")
	_, _, err = runNATSCmd(t, "streams", "apply", "--nats-url", url, "--nats-nkey", opSeed)
	require.ErrorContains(t, err, "certificate signed by unknown authority", "TLS is required")
}

func strconvQuote(s string) string { return fmt.Sprintf("%q", s) }
