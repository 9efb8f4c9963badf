package publisher_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/aweber-imbi/imbi-worker/plugins"
	"github.com/aweber-imbi/imbi-worker/publisher"
	"github.com/aweber-imbi/imbi-worker/wire"
	"github.com/aweber-imbi/imbi-worker/wire/wiredata"
)

// Example publishes one matched rule of one webhook delivery and waits for
// the JetStream ack. In production nc is a connection to the cluster and
// the work stream already exists (imbi-worker streams apply).
func Example() {
	nc, stop := exampleServer()
	defer stop()
	ctx := context.Background()

	p, err := publisher.New(nc, publisher.Config{})
	if err != nil {
		panic(err)
	}
	defer p.Close()

	ack, err := p.Publish(ctx, publisher.Message{
		DeliveryID: "d-1",
		Data: wiredata.ActionData{
			Rule:    wire.Rule{Handler: "http#request", Ordinal: 0},
			Context: plugins.PluginContext{ProjectID: "p-1", ProjectSlug: "checkout", OrgSlug: "acme"},
			Event: plugins.Event{
				Type:              "push",
				ThirdPartyService: "github",
				Metadata:          plugins.EventMetadata{WebhookID: "wh-1"},
				Payload:           map[string]any{"ref": "refs/heads/main"},
			},
		},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(ack.Stream, ack.Sequence, ack.Duplicate)
	// Output: IMBI_ACTIONS 1 false
}

// exampleServer is an in-process JetStream with the work stream, so the
// example runs as a test.
func exampleServer() (*nats.Conn, func()) {
	dir, err := os.MkdirTemp("", "publisher-example-")
	if err != nil {
		panic(err)
	}
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	if err != nil {
		panic(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		panic("nats-server did not start")
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		panic(err)
	}
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{
		Name: wire.DefaultStream, Subjects: []string{wire.DefaultSubjectPrefix + ".>"},
		Retention: jetstream.WorkQueuePolicy, Duplicates: 2 * time.Minute,
	}); err != nil {
		panic(err)
	}
	return nc, func() {
		nc.Close()
		srv.Shutdown()
		srv.WaitForShutdown()
		_ = os.RemoveAll(dir)
	}
}
