package cli

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/creds"
)

const urlCanary = "CANARYpw5e1d"

// TestMalformedURLsNeverEchoTheirPassword: no URL given to --nats-url or
// --neo4j-url, well-formed or not, gets its password or token into the
// error, stdout or stderr of any command that dials it; nor does
// --neo4j-password.
func TestMalformedURLsNeverEchoTheirPassword(t *testing.T) {
	key, err := creds.GenerateKey()
	require.NoError(t, err)
	t.Setenv(creds.EnvEncryptionKey, key)
	t.Setenv(creds.EnvEncryptionKeys, "")

	natsURLs := []string{
		"nats://u:" + urlCanary + "@[::1",                    // missing ]
		"nats://u:" + urlCanary + "@127.0.0.1:notaport",      // bad port
		"nats://u:" + urlCanary + "%zz@127.0.0.1:4222",       // bad escape
		"nats://u:%43" + urlCanary[1:] + "@[::1",             // escaped form (C = %43)
		"nats://u:" + urlCanary + "\x1b@127.0.0.1:1",         // control character: quoted by net/url
		"nats://u:" + urlCanary + " x@127.0.0.1:1",           // space in the user info
		"nats://u:pa/" + urlCanary + "@127.0.0.1:1",          // unescaped / in the password
		"nats://u:p@ss" + urlCanary + "@127.0.0.1:1",         // unescaped @ in the password
		"nats://" + urlCanary + "@[::1",                      // token, no user
		"u:" + urlCanary + "@127.0.0.1:1",                    // no scheme
		"nats://127.0.0.1:1, nats://u:" + urlCanary + "@[::", // list: the second is bad
		"nats://u:" + urlCanary + "@127.0.0.1:1",             // well-formed, nothing listens
	}
	for _, cmd := range [][]string{{"streams", "apply"}, {"dlq", "stats"}, {"run", "--data-dir", t.TempDir()}} {
		for _, u := range natsURLs {
			t.Run(cmd[0]+" "+u, func(t *testing.T) {
				out, errOut, err := runNATSCmd(t, append(append([]string{}, cmd...), "--nats-url", u)...)
				require.Error(t, err)
				require.ErrorContains(t, err, "connect to NATS")
				requireNoSecrets(t, []string{urlCanary, urlCanary[1:]}, out, errOut, err)
			})
		}
	}

	neo4jCases := []struct{ url, password string }{
		{"bolt://u:" + urlCanary + "@[::1", ""},
		{"neo4j://u:" + urlCanary + "@127.0.0.1:notaport", ""},
		{"bolt+s://u:" + urlCanary + "%zz@127.0.0.1:1", ""},
		{"bolt://u:" + urlCanary + "\x1b@127.0.0.1:1", ""},
		{"bolt://u:" + urlCanary + "@127.0.0.1:1", ""}, // well-formed, nothing listens
		{"bolt://127.0.0.1:1", urlCanary},              // the password flag
		{"bolt://[::1", urlCanary},
		{"not a url " + urlCanary, ""},
	}
	for _, cmd := range [][]string{{"creds", "keys", "pl-1"}, {"creds", "check", "pl-1"}, {"creds", "rotate"}} {
		for _, c := range neo4jCases {
			t.Run(cmd[0]+" "+cmd[1]+" "+c.url, func(t *testing.T) {
				args := append(append([]string{}, cmd...), "--neo4j-url", c.url)
				if c.password != "" {
					args = append(args, "--neo4j-password", c.password)
				}
				out, errOut, err := runNATSCmd(t, args...)
				require.Error(t, err)
				requireNoSecrets(t, []string{urlCanary, urlCanary[1:]}, out, errOut, err)
			})
		}
	}
}

// The redacted connect error still matches what nats.go returned, without
// unwrapping to its text.
func TestConnectErrorKeepsIdentityNotText(t *testing.T) {
	err := connectError("nats://u:"+urlCanary+"@127.0.0.1:1", nats.ErrNoServers)
	require.ErrorIs(t, err, nats.ErrNoServers)
	require.Nil(t, errors.Unwrap(err))
	require.Equal(t, "connect to NATS nats://[redacted]@127.0.0.1:1: "+nats.ErrNoServers.Error(), err.Error())

	_, perr := url.Parse("nats://u:" + urlCanary + "@[::1")
	err = connectError("nats://u:"+urlCanary+"@[::1", perr)
	var urlErr *url.Error
	require.False(t, errors.As(err, &urlErr), "the url.Error (which quotes the URL) is not reachable")
	require.False(t, strings.Contains(err.Error(), urlCanary))
	require.Contains(t, err.Error(), "connect to NATS nats://[redacted]@[::1: invalid URL")
}
