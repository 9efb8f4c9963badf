package telemetry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

func startJetStream(t *testing.T) *nats.Conn {
	t.Helper()
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
	})
	require.NoError(t, err)
	go srv.Start()
	require.True(t, srv.ReadyForConnections(10*time.Second))
	t.Cleanup(srv.Shutdown)
	nc, err := nats.Connect(srv.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc
}

// The gauges sample a real JetStream consumer at scrape time.
func TestConsumerGaugesSampleRealConsumer(t *testing.T) {
	clearOTelEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	js, err := jetstream.New(startJetStream(t))
	require.NoError(t, err)
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: "IMBI_ACTIONS", Subjects: []string{"imbi.actions.>"}, Retention: jetstream.WorkQueuePolicy,
	})
	require.NoError(t, err)
	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: "imbi-worker", AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute,
	})
	require.NoError(t, err)
	for i := range 5 {
		_, err := js.Publish(ctx, "imbi.actions.github.create_issue", fmt.Appendf(nil, "m%d", i))
		require.NoError(t, err)
	}
	batch, err := cons.Fetch(2, jetstream.FetchMaxWait(5*time.Second))
	require.NoError(t, err)
	n := 0
	for range batch.Messages() {
		n++ // held, not acked: ack pending
	}
	require.Equal(t, 2, n)

	p := setup(t, Config{NoRuntimeMetrics: true})
	reg, err := RegisterConsumerGauges(p.MeterProvider.Meter("test"), ConsumerInfoFunc(cons.Info), time.Second)
	require.NoError(t, err)
	// The server updates a consumer's counts asynchronously after a fetch,
	// so the first samples may lag; they must reach the true values.
	want := []string{
		`imbi_worker_consumer_pending{consumer="imbi-worker",stream="IMBI_ACTIONS"} 3`,
		`imbi_worker_consumer_ack_pending{consumer="imbi-worker",stream="IMBI_ACTIONS"} 2`,
		`imbi_worker_consumer_redelivered{consumer="imbi-worker",stream="IMBI_ACTIONS"} 0`,
	}
	var body string
	require.Eventually(t, func() bool {
		body = scrape(t, p)
		for _, w := range want {
			if !strings.Contains(body, w) {
				return false
			}
		}
		return true
	}, 10*time.Second, 20*time.Millisecond, "gauges never matched the consumer: %s", body)

	require.NoError(t, reg.Unregister())
	require.NotContains(t, scrape(t, p), "imbi_worker_consumer_pending")
}

// A failing sample leaves the gauges out of that scrape (a gap, never a
// false zero) and does not break the rest of /metrics.
func TestConsumerGaugesOnErrorReportNothing(t *testing.T) {
	clearOTelEnv(t)
	p := setup(t, Config{NoRuntimeMetrics: true})
	m := p.MeterProvider.Meter("test")
	_, err := RegisterConsumerGauges(m, ConsumerInfoFunc(func(ctx context.Context) (*jetstream.ConsumerInfo, error) {
		return nil, errors.New("nats: connection closed")
	}), time.Second)
	require.NoError(t, err)
	c, err := m.Int64Counter("still.here")
	require.NoError(t, err)
	c.Add(context.Background(), 1)
	body := scrape(t, p)
	require.NotContains(t, body, "imbi_worker_consumer_")
	require.Contains(t, body, "still_here_total 1")
}

// A stuck server cannot hold a scrape longer than the sample timeout.
func TestConsumerGaugesTimeout(t *testing.T) {
	clearOTelEnv(t)
	p := setup(t, Config{NoRuntimeMetrics: true})
	_, err := RegisterConsumerGauges(p.MeterProvider.Meter("test"), ConsumerInfoFunc(func(ctx context.Context) (*jetstream.ConsumerInfo, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}), 50*time.Millisecond)
	require.NoError(t, err)
	start := time.Now()
	scrape(t, p)
	require.Less(t, time.Since(start), 2*time.Second)
}
