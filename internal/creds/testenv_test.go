package creds

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/testenv"
)

// internal/testenv cannot import this package (its tests import testenv),
// so it repeats the variable's name; this keeps the two equal.
func TestEnvNeo4jURLMatchesTestenv(t *testing.T) {
	require.Equal(t, EnvNeo4jURL, testenv.EnvNeo4jURL)
}
