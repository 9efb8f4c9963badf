// Package creds reads and writes plugin credentials in Neo4j with the exact
// semantics of Imbi's Python credentials module (plugins-spec §10): the
// configuration path (api_token, aws-iam-ic) and the application path
// (oauth2, oidc), Fernet with Python-compatible tokens, patch and keys. It
// adds what the worker needs on top: key rotation, a per-plugin cache with
// single-flight loading (Resolver), and brief retries of transient Neo4j
// errors. No secret ever goes into an error text or a log record.
package creds

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j/config"
	"github.com/sethvargo/go-retry"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// Environment variables with the Neo4j connection settings.
const (
	EnvNeo4jURL      = "IMBI_NEO4J_URL"
	EnvNeo4jUser     = "IMBI_NEO4J_USER"
	EnvNeo4jPassword = "IMBI_NEO4J_PASSWORD"
	EnvNeo4jDatabase = "IMBI_NEO4J_DATABASE"
)

// Config says how to reach Neo4j.
type Config struct {
	// URL is the Bolt or neo4j:// URL, e.g. bolt://127.0.0.1:7687. Required.
	URL string
	// User defaults to "neo4j".
	User string
	// Password for User; empty means no authentication.
	Password string
	// Database defaults to "neo4j".
	Database string
	// QueryTimeout bounds one query attempt. Default 5s.
	QueryTimeout time.Duration
	// Retries is how many times a transient error (connection refused,
	// leader switch, timeout) is retried before the store reports the
	// plugin unavailable. Default 3; negative means none.
	Retries int
	// RetryBase is the first retry delay, doubled each time. Default 100ms.
	RetryBase time.Duration
	// RetryBudget bounds one logical query, all attempts included, so a
	// hanging Neo4j holds a worker slot for at most this long before the
	// message goes back for a later retry. Default 10s.
	RetryBudget time.Duration
}

// ConfigFromEnv reads IMBI_NEO4J_URL, IMBI_NEO4J_USER, IMBI_NEO4J_PASSWORD
// and IMBI_NEO4J_DATABASE. getenv is os.Getenv in production.
func ConfigFromEnv(getenv func(string) string) Config {
	return Config{
		URL:      getenv(EnvNeo4jURL),
		User:     getenv(EnvNeo4jUser),
		Password: getenv(EnvNeo4jPassword),
		Database: getenv(EnvNeo4jDatabase),
	}
}

func (c *Config) setDefaults() {
	if c.User == "" {
		c.User = "neo4j"
	}
	if c.Database == "" {
		c.Database = "neo4j"
	}
	if c.QueryTimeout <= 0 {
		c.QueryTimeout = 5 * time.Second
	}
	if c.Retries == 0 {
		c.Retries = 3
	}
	if c.RetryBase <= 0 {
		c.RetryBase = 100 * time.Millisecond
	}
	if c.RetryBudget <= 0 {
		c.RetryBudget = 10 * time.Second
	}
}

// ErrNoURL: the store was asked for without a Neo4j URL.
var ErrNoURL = errors.New("neo4j URL not configured: set " + EnvNeo4jURL)

// Store is the Neo4j credential store. It is safe for concurrent use.
type Store struct {
	driver   neo4j.DriverWithContext
	cfg      Config
	cipher   Cipher
	log      *slog.Logger
	duration metric.Float64Histogram
}

// Option configures a Store or a Resolver.
type Option func(*options)

type options struct {
	log    *slog.Logger
	meters metric.MeterProvider
	ttl    *time.Duration
	max    int
}

// WithLogger sets the logger for WARNING records (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithMeterProvider sets where metrics go (default: a no-op provider).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(o *options) { o.meters = mp }
}

func buildOptions(opts []Option) options {
	o := options{}
	for _, f := range opts {
		f(&o)
	}
	if o.log == nil {
		o.log = slog.Default()
	}
	if o.meters == nil {
		o.meters = noop.NewMeterProvider()
	}
	return o
}

const meterName = "github.com/aweber-imbi/imbi-worker/internal/creds"

// Open connects to Neo4j (lazily: the first query dials; call Ping to
// check) and returns a store that encrypts and decrypts with cipher.
func Open(cfg Config, cipher Cipher, opts ...Option) (*Store, error) {
	if cfg.URL == "" {
		return nil, ErrNoURL
	}
	if cipher == nil {
		return nil, ErrKeyNotConfigured
	}
	cfg.setDefaults()
	o := buildOptions(opts)
	auth := neo4j.NoAuth()
	if cfg.Password != "" {
		auth = neo4j.BasicAuth(cfg.User, cfg.Password, "")
	}
	drv, err := neo4j.NewDriverWithContext(cfg.URL, auth, func(c *config.Config) {
		// The store retries transient errors itself (briefly, then the
		// message is retried by JetStream); the driver's own 30 s
		// transaction retry loop would hold a worker slot far too long.
		c.MaxTransactionRetryTime = 0
		c.SocketConnectTimeout = 2 * time.Second
		c.ConnectionAcquisitionTimeout = cfg.QueryTimeout
		c.UserAgent = "imbi-worker"
	})
	if err != nil {
		// The URL may carry user:password@; never echo it.
		return nil, fmt.Errorf("neo4j driver: invalid %s", EnvNeo4jURL)
	}
	hist, err := o.meters.Meter(meterName).Float64Histogram("imbi_worker.neo4j.query.duration",
		metric.WithUnit("s"), metric.WithDescription("Duration of one Neo4j query attempt by the credential store"))
	if err != nil {
		return nil, fmt.Errorf("neo4j query histogram: %w", err)
	}
	return &Store{driver: drv, cfg: cfg, cipher: cipher, log: o.log, duration: hist}, nil
}

// Close releases the driver's connections.
func (s *Store) Close(ctx context.Context) error { return s.driver.Close(ctx) }

// Ping checks that Neo4j answers (readiness).
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
	defer cancel()
	if err := s.driver.VerifyConnectivity(ctx); err != nil {
		return fmt.Errorf("neo4j unreachable: %w", err)
	}
	return nil
}

// query runs one read or write query with driver parameters, retrying
// transient failures with exponential backoff.
func (s *Store) query(ctx context.Context, name, cypher string, params map[string]any, write bool) ([]*neo4j.Record, error) {
	routing := neo4j.ExecuteQueryWithReadersRouting()
	if write {
		routing = neo4j.ExecuteQueryWithWritersRouting()
	}
	var backoff retry.Backoff = retry.NewExponential(s.cfg.RetryBase)
	backoff = retry.WithMaxRetries(uint64(max(s.cfg.Retries, 0)), retry.WithJitterPercent(20, backoff))
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RetryBudget)
	defer cancel()
	return retry.DoValue(ctx, backoff, func(ctx context.Context) ([]*neo4j.Record, error) {
		qctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
		defer cancel()
		start := time.Now()
		res, err := neo4j.ExecuteQuery(qctx, s.driver, cypher, params, neo4j.EagerResultTransformer,
			neo4j.ExecuteQueryWithDatabase(s.cfg.Database), routing)
		outcome := "ok"
		if err != nil {
			outcome = "error"
		}
		s.duration.Record(ctx, time.Since(start).Seconds(), metric.WithAttributes(
			attribute.String("query", name), attribute.String("outcome", outcome)))
		if err != nil {
			if ctx.Err() == nil && isTransient(err) {
				return nil, retry.RetryableError(err)
			}
			return nil, err
		}
		return res.Records, nil
	})
}

// isTransient: worth another attempt in a moment.
func isTransient(err error) bool {
	if neo4j.IsRetryable(err) || neo4j.IsConnectivityError(err) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var limit *neo4j.TransactionExecutionLimit
	if errors.As(err, &limit) {
		for _, e := range limit.Errors {
			if neo4j.IsRetryable(e) || neo4j.IsConnectivityError(e) {
				return true
			}
		}
	}
	var conn *neo4j.ConnectivityError
	return errors.As(err, &conn)
}

// StoreError is a failure to talk to Neo4j (after retries). The worker
// maps it to *plugins.PluginUnavailableError.
type StoreError struct {
	Op  string
	Err error
}

func (e *StoreError) Error() string { return "neo4j " + e.Op + ": " + e.Err.Error() }
func (e *StoreError) Unwrap() error { return e.Err }

func valueOf(rec *neo4j.Record, key string) any {
	v, _ := rec.Get(key)
	return v
}

// Q-READ and Q-WRITE of plugins-spec §10.2, with real parameters.
const (
	cypherReadConfig = `MATCH (p:Plugin {id: $plugin_id})
RETURN p.plugin_configuration AS creds
LIMIT 1`
	// The credential reads of the worker: Q-READ and Q-APP narrowed to the
	// Plugin node that belongs to the handler's plugin. The node's
	// plugin_slug must be the manifest's and, when the event names a
	// third-party service, the node must hang off that service
	// (graph-schema: (:ThirdPartyService)-[:HAS_PLUGIN]->(:Plugin)), as the
	// gateway found it. plugin.id comes from event data: without this check
	// a forged event could hand one plugin's secret to another's action.
	// The query returns the secret only when owned is true.
	cypherOwned = `MATCH (p:Plugin {id: $plugin_id})
WITH p, p.plugin_slug = $plugin_slug
  AND ($service = '' OR EXISTS { MATCH (:ThirdPartyService {slug: $service})-[:HAS_PLUGIN]->(p) }) AS owned
`
	cypherReadOwnedConfig = cypherOwned + `RETURN owned, CASE WHEN owned THEN p.plugin_configuration END AS creds
LIMIT 1`
	cypherReadOwnedApp = cypherOwned + `OPTIONAL MATCH (p)-[:USES_APPLICATION]->(a:ServiceApplication) WHERE owned
RETURN owned, a IS NOT NULL AS linked, a.client_id AS client_id, a.client_secret AS client_secret
LIMIT 1`
	cypherWriteConfig = `MATCH (p:Plugin {id: $plugin_id})
SET p.plugin_configuration = $blob
RETURN count(p) AS matched`
	cypherFindPlugin = `MATCH (:ThirdPartyService {slug: $service})-[:HAS_PLUGIN]->(p:Plugin {plugin_slug: $plugin_slug})
RETURN p.id AS id
ORDER BY p.id
LIMIT 2`
	cypherPluginSlug = `MATCH (p:Plugin {id: $plugin_id})
RETURN p.plugin_slug AS plugin_slug
LIMIT 1`
)

// readConfigValue runs Q-READ: found=false when there is no record.
func (s *Store) readConfigValue(ctx context.Context, pluginID string) (raw any, found bool, err error) {
	recs, err := s.query(ctx, "read_configuration", cypherReadConfig, map[string]any{"plugin_id": pluginID}, false)
	if err != nil {
		return nil, false, &StoreError{Op: "read plugin_configuration", Err: err}
	}
	if len(recs) == 0 {
		return nil, false, nil
	}
	return valueOf(recs[0], "creds"), true, nil
}

// decrypt applies the cipher to a stored property. A property that is not
// a string cannot be a token: Python's decrypt would fail on it, so it is
// "None" here.
func (s *Store) decrypt(raw any) (string, bool, error) {
	tok, ok := raw.(string)
	if !ok {
		return "", false, nil
	}
	return s.cipher.Decrypt(tok)
}

func isEmpty(raw any) bool {
	if raw == nil {
		return true
	}
	str, ok := raw.(string)
	return ok && str == ""
}

// pyList formats names the way Python prints a list of str: ['a', 'b'].
func pyList(names []string) string {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = pyStrRepr(n)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}
