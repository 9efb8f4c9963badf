package deploy_test

import (
	"net/url"
	"os"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/conf"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/aweber-imbi/imbi-worker/cli"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// workerEnv is the environment the Kubernetes worker container gets from
// the ConfigMap and its env list (values of secret refs are "").
func workerEnv(c cluster) map[string]string {
	env := map[string]string{}
	ctr := c.deployment.Spec.Template.Spec.Containers[0]
	for _, ef := range ctr.EnvFrom {
		if ef.ConfigMapRef != nil {
			for k, v := range c.configMaps[ef.ConfigMapRef.Name].Data {
				env[k] = v
			}
		}
	}
	for _, e := range ctr.Env {
		env[e.Name] = e.Value
	}
	return env
}

// secretFile: path lies in a read-only mount of a Secret volume that
// provides the file.
func requireSecretFile(t *testing.T, c cluster, file string) {
	t.Helper()
	pod := c.deployment.Spec.Template.Spec
	ctr := pod.Containers[0]
	for _, m := range ctr.VolumeMounts {
		if path.Dir(file) != m.MountPath {
			continue
		}
		require.True(t, m.ReadOnly, "%s: mount %s must be read-only", file, m.MountPath)
		for _, v := range pod.Volumes {
			if v.Name != m.Name {
				continue
			}
			require.NotNil(t, v.Secret, "%s: volume %s must be a Secret", file, v.Name)
			// The non-root user reads it through fsGroup, nobody else.
			require.NotNil(t, pod.SecurityContext.FSGroup, "%s: without fsGroup the non-root user cannot read the Secret's files", file)
			require.Equal(t, *pod.SecurityContext.RunAsGroup, *pod.SecurityContext.FSGroup)
			require.NotNil(t, v.Secret.DefaultMode)
			require.Zero(t, *v.Secret.DefaultMode&0o007, "%s: readable by others", file)
			if len(v.Secret.Items) > 0 {
				require.True(t, slices.ContainsFunc(v.Secret.Items, func(it struct {
					Key  string `json:"key"`
					Path string `json:"path"`
				}) bool {
					return it.Path == path.Base(file)
				}), "%s: the Secret volume does not project it", file)
			}
			return
		}
		t.Fatalf("%s: mount %s names no volume", file, m.MountPath)
	}
	t.Fatalf("%s is in no mounted volume", file)
}

// The Kubernetes worker talks to NATS over TLS with an nkey and to Neo4j
// over TLS; seed and CA are files from a Secret, never environment values.
func TestKubernetesWorkerUsesTLSAndNKey(t *testing.T) {
	c := loadCluster(t)
	env := workerEnv(c)
	for _, u := range strings.Split(env[cli.EnvName("nats-url")], ",") {
		parsed, err := url.Parse(u)
		require.NoError(t, err)
		require.Equal(t, "tls", parsed.Scheme, "NATS over TLS: %s", u)
		require.Nil(t, parsed.User, "no credentials in the URL")
	}
	seed := env[cli.EnvName("nats-nkey")]
	require.NotEmpty(t, seed, "the worker authenticates with an nkey")
	requireSecretFile(t, c, seed)
	ca := env[cli.EnvName("nats-tls-ca")]
	require.NotEmpty(t, ca)
	requireSecretFile(t, c, ca)
	require.Contains(t, strings.Split(env["SSL_CERT_DIR"], ":"), path.Dir(ca), "Neo4j's TLS trusts the same CA")

	neo, err := url.Parse(env[cli.EnvName("neo4j-url")])
	require.NoError(t, err)
	require.Contains(t, []string{"bolt+s", "neo4j+s"}, neo.Scheme, "Neo4j over TLS with verification")
	require.Nil(t, neo.User)
}

// The NetworkPolicy selects the worker pods, restricts both directions,
// admits only the admin port, and lets the pods reach DNS, NATS and Neo4j
// on the ports their URLs name, and public HTTPS but no private range.
func TestNetworkPolicyRestrictsTheWorkers(t *testing.T) {
	c := loadCluster(t)
	np := c.networkPolicy
	require.Equal(t, "networking.k8s.io/v1", np.APIVersion)
	pod := c.deployment.Spec.Template
	require.NotEmpty(t, np.Spec.PodSelector.MatchLabels)
	require.True(t, subset(np.Spec.PodSelector.MatchLabels, pod.Metadata.Labels), "the NetworkPolicy selects no worker pod")
	require.ElementsMatch(t, []string{"Ingress", "Egress"}, np.Spec.PolicyTypes)

	adminPortName := pod.Spec.Containers[0].Ports[0].Name
	require.NotEmpty(t, np.Spec.Ingress)
	for _, in := range np.Spec.Ingress {
		require.NotEmpty(t, in.From, "ingress from anywhere")
		require.NotEmpty(t, in.Ports, "ingress on every port")
		for _, p := range in.Ports {
			require.Equal(t, adminPortName, p.Port, "only the admin port is reachable")
		}
	}

	egressPorts := map[string]bool{}
	for _, out := range np.Spec.Egress {
		require.NotEmpty(t, out.To, "egress to anywhere")
		require.NotEmpty(t, out.Ports, "egress on every port")
		for _, p := range out.Ports {
			b, err := yaml.Marshal(p.Port)
			require.NoError(t, err)
			egressPorts[strings.TrimSpace(string(b))] = true
		}
		for _, peer := range out.To {
			if peer.IPBlock == nil {
				continue
			}
			for _, private := range []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"} {
				require.Contains(t, peer.IPBlock.Except, private, "egress to %s reaches private or metadata addresses", peer.IPBlock.CIDR)
			}
		}
	}
	env := workerEnv(c)
	natsURL, err := url.Parse(strings.Split(env[cli.EnvName("nats-url")], ",")[0])
	require.NoError(t, err)
	neoURL, err := url.Parse(env[cli.EnvName("neo4j-url")])
	require.NoError(t, err)
	for name, port := range map[string]string{"DNS": "53", "NATS": natsURL.Port(), "Neo4j": neoURL.Port(), "HTTPS": "443"} {
		require.True(t, egressPorts[port], "the NetworkPolicy blocks %s (port %s)", name, port)
	}
}

// natsPermissions reads deploy/nats/permissions.conf with nats-server's own
// parser: role → publish/subscribe → allow list.
func natsPermissions(t *testing.T) map[string]map[string][]string {
	t.Helper()
	raw, err := os.ReadFile("nats/permissions.conf")
	require.NoError(t, err)
	m, err := conf.Parse(string(raw))
	require.NoError(t, err)
	out := map[string]map[string][]string{}
	for role, v := range m {
		perms := map[string][]string{}
		for dir, p := range v.(map[string]any) {
			allow := p.(map[string]any)["allow"]
			var subjects []string
			switch a := allow.(type) {
			case string:
				subjects = []string{a}
			case []any:
				for _, s := range a {
					subjects = append(subjects, s.(string))
				}
			}
			_, hasDeny := p.(map[string]any)["deny"]
			require.False(t, hasDeny, "allow lists only (deny by default)")
			perms[dir] = subjects
		}
		out[role] = perms
	}
	return out
}

// The roles of permissions.conf: a publisher publishes work only; the
// worker has its subjects (named from wire/ defaults) and nothing of the
// publisher's work subjects or a wildcard API grant.
func TestNATSPermissionsFile(t *testing.T) {
	p := natsPermissions(t)
	require.ElementsMatch(t, []string{"IMBI_PUBLISHER_PERMISSIONS", "IMBI_WORKER_PERMISSIONS"}, keys(p))

	pub := p["IMBI_PUBLISHER_PERMISSIONS"]
	require.Equal(t, []string{wire.DefaultSubjectPrefix + ".>"}, pub["publish"])
	require.Equal(t, []string{"_INBOX.>"}, pub["subscribe"])

	w := p["IMBI_WORKER_PERMISSIONS"]
	for _, s := range []string{
		"$JS.API.CONSUMER.MSG.NEXT." + wire.DefaultStream + ".imbi-worker",
		"$JS.ACK." + wire.DefaultStream + ".imbi-worker.>",
		wire.DefaultDLQPrefix + ".>",
		"$KV.imbi_actions_done.>",
		"$KV.imbi_lanes.>",
		"imbi.outcomes.>",
		"imbi.plugins.v1.>",
	} {
		require.Contains(t, w["publish"], s)
	}
	for _, s := range w["publish"] {
		require.False(t, strings.HasPrefix(s, wire.DefaultSubjectPrefix+"."), "the worker never publishes work: %s", s)
		require.NotEqual(t, ">", s)
		require.NotEqual(t, "$JS.API.>", s, "no blanket JetStream API grant")
		require.NotContains(t, s, "DELETE")
		require.NotContains(t, s, "PURGE")
	}
	require.ElementsMatch(t, []string{cli.WorkerInboxPrefix + ".>",
		"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + wire.DefaultStream + ".imbi-worker",
		wire.PluginAnnounceSubject}, w["subscribe"]) // plugin hosts announce themselves (§D)
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// mounted: some volume of s ("host:target[:ro]", read-only) puts file
// (or the directory holding it) in the container.
func mounted(t *testing.T, s composeService, file string) bool {
	t.Helper()
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 {
			continue
		}
		if target := parts[1]; target == file || target == path.Dir(file) {
			require.Equal(t, "ro", parts[len(parts)-1], "%s must be mounted read-only", file)
			return true
		}
	}
	return false
}

// compose.secure.yaml turns on TLS and nkeys for NATS (with the shipped
// permissions) and TLS for Neo4j, with the worker's seed and CA mounted as
// files.
func TestComposeSecureOverride(t *testing.T) {
	var base, sec composeFile
	strict(t, "compose.yaml", &base)
	strict(t, "compose.secure.yaml", &sec)
	for name := range sec.Services {
		require.Contains(t, base.Services, name, "the override names a service compose.yaml lacks")
	}
	for _, n := range []string{"nats-1", "nats-2", "nats-3"} {
		s, ok := sec.Services[n]
		require.True(t, ok, n)
		require.Equal(t, []string{"-c", "/etc/nats/nats-server.conf"}, s.Command[:2], n)
		require.Contains(t, s.Command, n, "%s needs its own server name", n)
		require.Equal(t, n, s.Environment["SERVER_NAME"], "nats-server.conf reads $SERVER_NAME")
		for _, f := range []string{"/etc/nats/nats-server.conf", "/etc/nats/permissions.conf", "/etc/nats/tls/server.crt"} {
			require.True(t, mounted(t, s, f), "%s: %s not mounted", n, f)
		}
	}
	neo := sec.Services["neo4j"]
	require.Equal(t, "REQUIRED", neo.Environment["NEO4J_server_bolt_tls__level"], "Neo4j refuses plaintext Bolt")

	w := sec.Services["worker"]
	env := map[string]string{}
	for k, v := range base.Services["worker"].Environment {
		env[k] = v
	}
	for k, v := range w.Environment {
		env[k] = v
		checkEnv(t, "compose.secure worker", base.Services["worker"].Command, k, v, nil)
	}
	checkValues(t, "compose.secure worker", env)
	for _, u := range strings.Split(env[cli.EnvName("nats-url")], ",") {
		parsed, err := url.Parse(u)
		require.NoError(t, err)
		require.Equal(t, "tls", parsed.Scheme, u)
	}
	for _, f := range []string{env[cli.EnvName("nats-nkey")], env[cli.EnvName("nats-tls-ca")]} {
		require.NotEmpty(t, f)
		require.True(t, mounted(t, w, f), "worker: %s not mounted", f)
	}
	require.Contains(t, strings.Split(env["SSL_CERT_DIR"], ":"), path.Dir(env[cli.EnvName("nats-tls-ca")]))
	neoURL, err := url.Parse(env[cli.EnvName("neo4j-url")])
	require.NoError(t, err)
	require.Equal(t, "bolt+s", neoURL.Scheme)
}
