package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/aweber-imbi/imbi-worker/internal/admin"
)

// credsRunFlags are the credential-store settings of `run`:
// --neo4j-url/-user/-password/-database (IMBI_NEO4J_*) and
// --credentials-cache-ttl. The Fernet keys come from
// IMBI_AUTH_ENCRYPTION_KEY(S) only.
type credsRunFlags struct {
	neo4j    neo4jFlags
	cacheTTL time.Duration
}

func (c *credsRunFlags) addFlags(fs *pflag.FlagSet) {
	c.neo4j.register(fs)
	registerCacheTTL(fs, &c.cacheTTL)
}

// setupCredentials connects the credential store when --neo4j-url is set:
// the dispatcher then loads decrypted credentials through the cached
// resolver, /readyz pings Neo4j, and the driver closes after the worker.
// A missing or invalid encryption key stops the worker here, before it
// consumes anything (docs/decisions/0004-credential-keys.md). An
// unreachable Neo4j does not: readiness reports it and messages needing
// credentials are retried until it answers.
func setupCredentials(ctx context.Context, c *credsRunFlags, deps *runDeps) error {
	r, closeFn, err := c.neo4j.credentialSource(deps.Logger, deps.MeterProvider, c.cacheTTL)
	if err != nil {
		return fmt.Errorf("credential store: %w", err)
	}
	if r == nil {
		deps.Logger.Warn("no credential store configured (--neo4j-url / IMBI_NEO4J_URL unset): " +
			"actions whose plugin requires credentials fail with credentials_missing")
		return nil
	}
	deps.Credentials = r
	deps.Closers = append(deps.Closers, closeFn)
	deps.ReadinessChecks = append(deps.ReadinessChecks, admin.PingCheck("neo4j", r))
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := r.Ping(pingCtx); err != nil {
		deps.Logger.Warn("credential store not reachable yet; messages needing credentials will be retried", "error", err.Error())
	} else {
		deps.Logger.Info("credential store connected", "cache_ttl", c.cacheTTL.String())
	}
	return nil
}
