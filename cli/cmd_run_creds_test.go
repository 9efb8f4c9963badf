package cli

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/creds"
)

// `run` with a credential store but no usable key stops before it touches
// NATS, naming the variable, never the key.
func TestRunRefusesStoreWithoutKey(t *testing.T) {
	t.Setenv(creds.EnvEncryptionKey, "")
	t.Setenv(creds.EnvEncryptionKeys, "")
	_, _, err := runCLI(t, "", "run", "--neo4j-url", "bolt://127.0.0.1:1", "--admin-addr", "", "--data-dir", t.TempDir())
	require.ErrorIs(t, err, creds.ErrKeyNotConfigured)
	require.ErrorContains(t, err, "credential store: encryption key not configured")

	t.Setenv(creds.EnvEncryptionKey, "short-secret-material")
	_, _, err = runCLI(t, "", "run", "--neo4j-url", "bolt://127.0.0.1:1", "--admin-addr", "", "--data-dir", t.TempDir())
	require.ErrorContains(t, err, "Invalid encryption key in IMBI_AUTH_ENCRYPTION_KEY")
	require.NotContains(t, err.Error(), "short-secret-material")
}

// setupCredentials fills the run wiring: the dispatcher's source, a
// readiness check pinging Neo4j, and a closer for the driver.
func TestSetupCredentialsWiring(t *testing.T) {
	key, _ := credsEnv(t)
	t.Setenv(creds.EnvEncryptionKey, key)
	var logs bytes.Buffer
	deps := &runDeps{Logger: slog.New(slog.NewTextHandler(&logs, nil))}

	var off credsRunFlags
	require.NoError(t, setupCredentials(context.Background(), &off, deps))
	require.Nil(t, deps.Credentials)
	require.Contains(t, logs.String(), "no credential store configured")

	cfg := creds.ConfigFromEnv(os.Getenv)
	on := credsRunFlags{neo4j: neo4jFlags{url: cfg.URL, user: cfg.User, password: cfg.Password, database: cfg.Database}, cacheTTL: time.Minute}
	require.NoError(t, setupCredentials(context.Background(), &on, deps))
	require.NotNil(t, deps.Credentials)
	require.Len(t, deps.ReadinessChecks, 1)
	require.Equal(t, "neo4j", deps.ReadinessChecks[0].Name)
	require.NoError(t, deps.ReadinessChecks[0].Check(context.Background()))
	require.Contains(t, logs.String(), "credential store connected")
	require.NotContains(t, logs.String(), cfg.Password)
	deps.close(context.Background())
	require.Error(t, deps.ReadinessChecks[0].Check(context.Background()), "closed driver")
}
