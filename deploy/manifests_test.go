// Package deploy_test checks everything under deploy/ without a Docker
// engine or a cluster: every manifest parses strictly into typed structs
// (types_test.go), and every command, flag, environment variable, port and
// name the manifests use exists in the binary and agrees across files.
package deploy_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/aweber-imbi/imbi-worker/cli"
	"github.com/aweber-imbi/imbi-worker/internal/admin"
	"github.com/aweber-imbi/imbi-worker/internal/streams"
	"github.com/aweber-imbi/imbi-worker/internal/telemetry"
)

// goRuntimeEnv are read by the Go runtime, not by imbi-worker.
// SSL_CERT_DIR is read by crypto/x509 (the roots for NATS and Neo4j TLS).
var goRuntimeEnv = map[string]bool{"GOMEMLIMIT": true, "GOMAXPROCS": true, "GOGC": true, "GODEBUG": true, "SSL_CERT_DIR": true}

// kedaJetStreamParams are the nats-jetstream scaler's metadata keys
// (keda.sh/docs/scalers/nats-jetstream); anything else is a typo KEDA
// would ignore.
var kedaJetStreamParams = map[string]bool{
	"natsServerMonitoringEndpoint": true, "account": true, "stream": true, "consumer": true,
	"lagThreshold": true, "activationLagThreshold": true, "useHttps": true,
}

// strict decodes YAML, failing on unknown or duplicate fields.
func strict(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, yaml.UnmarshalStrict(raw, v), "%s does not match the fields deploy/ is known to use", path)
}

// command resolves args (e.g. ["run", "--x=1"]) against a fresh command
// tree: the subcommand must exist and every flag must parse.
func command(t *testing.T, args []string) *cobra.Command {
	t.Helper()
	require.NotEmpty(t, args)
	cmd, rest, err := cli.NewRootCmd().Find(args)
	require.NoError(t, err, "%v", args)
	require.NotEqual(t, "imbi-worker", cmd.Name(), "%v names no subcommand", args)
	require.NoError(t, cmd.ParseFlags(rest), "%v", args)
	return cmd
}

// flagForEnv is the flag whose IMBI_* twin is name, on cmd or inherited.
func flagForEnv(cmd *cobra.Command, name string) *pflag.Flag {
	var found *pflag.Flag
	visit := func(f *pflag.Flag) {
		if cli.EnvName(f.Name) == name {
			found = f
		}
	}
	cmd.Flags().VisitAll(visit)
	cmd.InheritedFlags().VisitAll(visit)
	return found
}

func isExtraEnv(name string) bool {
	return slices.ContainsFunc(cli.ExtraEnvironment, func(e cli.ExtraEnv) bool { return e.Name == name })
}

var interpolation = regexp.MustCompile(`\$\{[^}]*\}|\$\([A-Za-z_][A-Za-z0-9_]*\)`)

// checkEnv: name must be a flag's variable (and value must parse as that
// flag), a variable the code reads directly, a standard OTEL_* or Go
// runtime variable, or a helper other variables reference as $(NAME).
func checkEnv(t *testing.T, where string, cmdArgs []string, name, value string, helpers map[string]bool) {
	t.Helper()
	cmd := command(t, cmdArgs) // fresh: Set must not see earlier values
	if f := flagForEnv(cmd, name); f != nil {
		if value != "" && !interpolation.MatchString(value) {
			require.NoError(t, f.Value.Set(value), "%s: %s=%q is not a valid --%s", where, name, value, f.Name)
		}
		return
	}
	ok := isExtraEnv(name) || strings.HasPrefix(name, "OTEL_") || goRuntimeEnv[name] || helpers[name]
	require.True(t, ok, "%s: %s is neither a flag of `imbi-worker %s` (%s) nor a variable the worker reads",
		where, name, cmd.Name(), "IMBI_<FLAG>")
}

// checkValues: values whose flag type (string) accepts anything are
// checked the way the worker will read them.
func checkValues(t *testing.T, where string, env map[string]string) {
	t.Helper()
	if _, err := telemetry.NewLogger(io.Discard, env[cli.EnvName("log-level")], env[cli.EnvName("log-format")]); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	if v, ok := env[cli.EnvName("nats-url")]; ok {
		for _, u := range strings.Split(v, ",") {
			parsed, err := url.Parse(u)
			require.NoError(t, err, where)
			require.Contains(t, []string{"nats", "tls"}, parsed.Scheme, "%s: %s", where, u)
			require.NotEmpty(t, parsed.Port(), "%s: %s", where, u)
		}
	}
	if v, ok := env["GOMEMLIMIT"]; ok {
		require.Regexp(t, `^[0-9]+(B|KiB|MiB|GiB|TiB)?$`, v, where)
	}
}

// requireKeyWithStore: with a credential store configured the worker
// refuses to start without a Fernet key, so a manifest that sets the store
// must provide one.
func requireKeyWithStore(t *testing.T, where string, env map[string]string) {
	t.Helper()
	if env[cli.EnvName("neo4j-url")] == "" {
		return
	}
	_, one := env["IMBI_AUTH_ENCRYPTION_KEY"]
	_, many := env["IMBI_AUTH_ENCRYPTION_KEYS"]
	require.True(t, one || many, "%s: a Neo4j store without IMBI_AUTH_ENCRYPTION_KEY(S) does not start", where)
}

// setting is what the worker will use for a flag given the environment:
// the variable's value, else the flag's default. The flag must exist.
func setting(t *testing.T, cmdArgs []string, env map[string]string, flag string) string {
	t.Helper()
	cmd := command(t, cmdArgs)
	f := cmd.Flags().Lookup(flag)
	if f == nil {
		f = cmd.InheritedFlags().Lookup(flag)
	}
	require.NotNil(t, f, "the manifests rely on --%s, which `imbi-worker %s` lacks", flag, cmd.Name())
	if v, ok := env[cli.EnvName(flag)]; ok {
		return v
	}
	return f.DefValue
}

func duration(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	require.NoError(t, err, s)
	return d
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	require.NoError(t, err, s)
	return n
}

// adminPort: the admin address must listen beyond loopback in a container
// (probes and Prometheus come from outside), and its port is returned.
func adminPort(t *testing.T, addr string) int {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	require.NoError(t, err, addr)
	require.Contains(t, []string{"", "0.0.0.0", "::"}, host, "admin address %q is unreachable from outside the container", addr)
	return atoi(t, port)
}

// The probe and scrape paths must be routes of the admin server.
func requireAdminRoute(t *testing.T, path string) {
	t.Helper()
	srv := admin.New(admin.Config{Metrics: http.NotFoundHandler()})
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if path == "/metrics" {
		require.NotEqual(t, http.StatusMethodNotAllowed, rec.Code)
		return
	}
	require.Contains(t, []int{http.StatusOK, http.StatusServiceUnavailable}, rec.Code, "admin server has no route %s", path)
}

func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false // an empty selector matches everything: never intended here
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// ---------------------------------------------------------------- Kubernetes

type cluster struct {
	kustomization  kustomization
	configMaps     map[string]configMap
	secrets        map[string]secret
	deployment     deployment
	service        service
	pdb            podDisruptionBudget
	serviceMonitor serviceMonitor
	scaledObject   scaledObject
	networkPolicy  networkPolicy
}

// loadCluster parses every file in deploy/kubernetes strictly by its kind.
func loadCluster(t *testing.T) cluster {
	t.Helper()
	files, err := filepath.Glob("kubernetes/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	c := cluster{configMaps: map[string]configMap{}, secrets: map[string]secret{}}
	seen := map[string]int{}
	for _, path := range files {
		var tm typeMeta
		raw, err := os.ReadFile(path)
		require.NoError(t, err)
		require.NoError(t, yaml.Unmarshal(raw, &tm), path)
		seen[tm.Kind]++
		switch tm.Kind {
		case "Kustomization":
			strict(t, path, &c.kustomization)
		case "ConfigMap":
			var v configMap
			strict(t, path, &v)
			c.configMaps[v.Metadata.Name] = v
		case "Secret":
			var v secret
			strict(t, path, &v)
			c.secrets[v.Metadata.Name] = v
		case "Deployment":
			strict(t, path, &c.deployment)
		case "Service":
			strict(t, path, &c.service)
		case "PodDisruptionBudget":
			strict(t, path, &c.pdb)
		case "ServiceMonitor":
			strict(t, path, &c.serviceMonitor)
		case "ScaledObject":
			strict(t, path, &c.scaledObject)
		case "NetworkPolicy":
			strict(t, path, &c.networkPolicy)
		default:
			t.Fatalf("%s: kind %q has no typed check; add one in types_test.go", path, tm.Kind)
		}
	}
	for _, kind := range []string{"Kustomization", "ConfigMap", "Secret", "Deployment", "Service",
		"PodDisruptionBudget", "ServiceMonitor", "ScaledObject", "NetworkPolicy"} {
		require.Equal(t, 1, seen[kind], "want exactly one %s under deploy/kubernetes", kind)
	}
	return c
}

func TestKubernetesManifestsParseStrictly(t *testing.T) {
	c := loadCluster(t)
	want := map[string]string{
		"Deployment": "apps/v1", "Service": "v1", "PodDisruptionBudget": "policy/v1",
		"ServiceMonitor": "monitoring.coreos.com/v1", "ScaledObject": "keda.sh/v1alpha1",
	}
	require.Equal(t, want["Deployment"], c.deployment.APIVersion)
	require.Equal(t, want["Service"], c.service.APIVersion)
	require.Equal(t, want["PodDisruptionBudget"], c.pdb.APIVersion)
	require.Equal(t, want["ServiceMonitor"], c.serviceMonitor.APIVersion)
	require.Equal(t, want["ScaledObject"], c.scaledObject.APIVersion)
}

// A misspelt field fails: the strict decoder is really strict.
func TestStrictDecodingRejectsUnknownFields(t *testing.T) {
	var d deployment
	err := yaml.UnmarshalStrict([]byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replica: 2\n"), &d)
	require.ErrorContains(t, err, `unknown field "replica"`)
	var s scaledObject
	err = yaml.UnmarshalStrict([]byte("spec:\n  scaleTargetRef: {name: x}\n  minReplicas: 1\n"), &s)
	require.Error(t, err)
}

func TestKustomizationListsEveryManifest(t *testing.T) {
	c := loadCluster(t)
	files, err := filepath.Glob("kubernetes/*.yaml")
	require.NoError(t, err)
	var want []string
	for _, f := range files {
		base := filepath.Base(f)
		// The example Secret holds placeholders: never applied by kustomize.
		if base != "kustomization.yaml" && base != "secret.example.yaml" {
			want = append(want, base)
		}
	}
	got := slices.Clone(c.kustomization.Resources)
	slices.Sort(got)
	slices.Sort(want)
	require.Equal(t, want, got)
}

func TestDeploymentMatchesBinary(t *testing.T) {
	c := loadCluster(t)
	d := c.deployment
	pod := d.Spec.Template
	require.Len(t, pod.Spec.Containers, 1)
	ctr := pod.Spec.Containers[0]
	args := ctr.Args
	require.Empty(t, ctr.Command, "the image's ENTRYPOINT is the binary")
	require.Equal(t, "run", command(t, args).Name())

	// Every variable reaching the container, with its value when known.
	env := map[string]string{}
	helpers := map[string]bool{}
	for _, e := range ctr.Env {
		for _, m := range interpolation.FindAllString(e.Value, -1) {
			helpers[strings.TrimSuffix(strings.TrimPrefix(m, "$("), ")")] = true
		}
	}
	for _, ef := range ctr.EnvFrom {
		require.NotNil(t, ef.ConfigMapRef, "envFrom only from the ConfigMap (secrets by key)")
		cm, ok := c.configMaps[ef.ConfigMapRef.Name]
		require.True(t, ok, "envFrom names a ConfigMap %q that deploy/kubernetes does not define", ef.ConfigMapRef.Name)
		for k, v := range cm.Data {
			checkEnv(t, "ConfigMap "+cm.Metadata.Name, args, k, v, helpers)
			env[k] = v
		}
	}
	for _, e := range ctr.Env {
		checkEnv(t, "Deployment env", args, e.Name, e.Value, helpers)
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			ref := e.ValueFrom.SecretKeyRef
			s, ok := c.secrets[ref.Name]
			require.True(t, ok, "secretKeyRef to unknown Secret %q", ref.Name)
			_, ok = s.StringData[ref.Key]
			require.True(t, ok, "Secret %q has no key %q", ref.Name, ref.Key)
			require.Equal(t, e.Name, ref.Key, "keep variable and key names equal")
		}
		env[e.Name] = e.Value
	}
	checkValues(t, "Deployment", env)
	requireKeyWithStore(t, "Deployment", env)

	// Secrets come from the Secret, never from the ConfigMap or a literal.
	for _, name := range []string{"IMBI_AUTH_ENCRYPTION_KEY", "IMBI_NEO4J_PASSWORD"} {
		var fromSecret bool
		for _, e := range ctr.Env {
			if e.Name == name && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.Value == "" {
				fromSecret = true
			}
		}
		require.True(t, fromSecret, "%s must come from a secretKeyRef", name)
		for _, cm := range c.configMaps {
			require.NotContains(t, cm.Data, name)
		}
	}
	for k, v := range c.secrets["imbi-worker"].StringData {
		require.True(t, strings.HasPrefix(v, "REPLACE-"), "secret.example.yaml must hold placeholders only (%s)", k)
	}

	// Ports: admin address = the named container port = scrape annotation.
	port := adminPort(t, setting(t, args, env, "admin-addr"))
	require.Len(t, ctr.Ports, 1)
	require.Equal(t, "admin", ctr.Ports[0].Name)
	require.Equal(t, port, ctr.Ports[0].ContainerPort)
	require.Equal(t, strconv.Itoa(port), pod.Metadata.Annotations["prometheus.io/port"])
	require.Equal(t, "true", pod.Metadata.Annotations["prometheus.io/scrape"])
	requireAdminRoute(t, pod.Metadata.Annotations["prometheus.io/path"])

	// Probes: on the admin port, on real routes; liveness never /readyz
	// (a NATS outage must not restart pods).
	for name, p := range map[string]*probe{"liveness": ctr.LivenessProbe, "readiness": ctr.ReadinessProbe, "startup": ctr.StartupProbe} {
		require.NotNil(t, p, name)
		require.NotNil(t, p.HTTPGet, name)
		require.Equal(t, "admin", p.HTTPGet.Port, name)
		requireAdminRoute(t, p.HTTPGet.Path)
	}
	require.Equal(t, "/healthz", ctr.LivenessProbe.HTTPGet.Path)
	require.Equal(t, "/readyz", ctr.ReadinessProbe.HTTPGet.Path)
	// A probe must answer within its timeout even when a check hangs.
	require.Greater(t, time.Duration(ctr.ReadinessProbe.TimeoutSeconds)*time.Second, admin.DefaultCheckTimeout)

	// Shutdown: preStop pause + --shutdown-grace must fit in the grace period.
	require.NotNil(t, ctr.Lifecycle)
	require.NotNil(t, ctr.Lifecycle.PreStop)
	require.NotNil(t, ctr.Lifecycle.PreStop.Sleep)
	need := time.Duration(ctr.Lifecycle.PreStop.Sleep.Seconds)*time.Second + duration(t, setting(t, args, env, "shutdown-grace"))
	require.NotNil(t, pod.Spec.TerminationGracePeriodSeconds)
	require.Greater(t, time.Duration(*pod.Spec.TerminationGracePeriodSeconds)*time.Second, need,
		"terminationGracePeriodSeconds must exceed preStop + --shutdown-grace, or in-flight actions are killed")

	// Resources, non-root, read-only root.
	require.NotEmpty(t, ctr.Resources.Requests["cpu"])
	require.NotEmpty(t, ctr.Resources.Requests["memory"])
	require.NotEmpty(t, ctr.Resources.Limits["memory"])
	require.NotNil(t, pod.Spec.SecurityContext)
	require.True(t, *pod.Spec.SecurityContext.RunAsNonRoot)
	require.NotZero(t, *pod.Spec.SecurityContext.RunAsUser)
	require.True(t, *ctr.SecurityContext.ReadOnlyRootFilesystem)
	require.False(t, *ctr.SecurityContext.AllowPrivilegeEscalation)
	require.Equal(t, []string{"ALL"}, ctr.SecurityContext.Capabilities.Drop)

	// Selectors.
	require.True(t, subset(d.Spec.Selector.MatchLabels, pod.Metadata.Labels), "Deployment selector does not match its pods")
	require.Nil(t, d.Spec.Replicas, "replicas belong to the KEDA ScaledObject")
}

func TestServicePDBAndMonitorSelectTheWorkers(t *testing.T) {
	c := loadCluster(t)
	podLabels := c.deployment.Spec.Template.Metadata.Labels
	ctr := c.deployment.Spec.Template.Spec.Containers[0]

	require.True(t, subset(c.service.Spec.Selector, podLabels), "Service selects no worker pod")
	require.True(t, subset(c.pdb.Spec.Selector.MatchLabels, podLabels), "PDB selects no worker pod")
	require.True(t, c.pdb.Spec.MaxUnavailable != nil || c.pdb.Spec.MinAvailable != nil)
	require.True(t, subset(c.serviceMonitor.Spec.Selector.MatchLabels, c.service.Metadata.Labels), "ServiceMonitor selects no Service")

	svcPorts := map[string]bool{}
	for _, p := range c.service.Spec.Ports {
		svcPorts[p.Name] = true
		require.Equal(t, ctr.Ports[0].Name, p.TargetPort, "Service targetPort must name the container port")
		require.Equal(t, ctr.Ports[0].ContainerPort, p.Port)
	}
	require.NotEmpty(t, c.serviceMonitor.Spec.Endpoints)
	for _, ep := range c.serviceMonitor.Spec.Endpoints {
		require.True(t, svcPorts[ep.Port], "ServiceMonitor port %q is not a Service port", ep.Port)
		requireAdminRoute(t, ep.Path)
		if ep.ScrapeTimeout != "" && ep.Interval != "" {
			require.Less(t, duration(t, ep.ScrapeTimeout), duration(t, ep.Interval))
		}
	}
}

func TestScaledObjectScalesTheConsumer(t *testing.T) {
	c := loadCluster(t)
	so := c.scaledObject
	args := c.deployment.Spec.Template.Spec.Containers[0].Args
	env := c.configMaps["imbi-worker"].Data

	require.Equal(t, c.deployment.Metadata.Name, so.Spec.ScaleTargetRef.Name)
	require.Len(t, so.Spec.Triggers, 1)
	tr := so.Spec.Triggers[0]
	require.Equal(t, "nats-jetstream", tr.Type)
	for k := range tr.Metadata {
		require.True(t, kedaJetStreamParams[k], "nats-jetstream scaler has no parameter %q", k)
	}
	for _, k := range []string{"natsServerMonitoringEndpoint", "account", "stream", "consumer", "lagThreshold"} {
		require.NotEmpty(t, tr.Metadata[k], k)
	}
	// The scaler watches the stream and durable consumer the worker binds.
	require.Equal(t, setting(t, args, env, "stream"), tr.Metadata["stream"])
	require.Equal(t, setting(t, args, env, "consumer"), tr.Metadata["consumer"])
	atoi(t, tr.Metadata["lagThreshold"])
	// The monitoring endpoint is on the same NATS host the worker uses.
	natsURL := env[cli.EnvName("nats-url")]
	require.NotEmpty(t, natsURL)
	monHost, _, err := net.SplitHostPort(tr.Metadata["natsServerMonitoringEndpoint"])
	require.NoError(t, err)
	require.Contains(t, natsURL, "://"+monHost+":")

	// MaxAckPending (server-side, shared) must cover every replica's slots.
	require.NotNil(t, so.Spec.MinReplicaCount)
	require.NotNil(t, so.Spec.MaxReplicaCount)
	require.GreaterOrEqual(t, *so.Spec.MinReplicaCount, 2, "one replica can drain while another works")
	concurrency := atoi(t, setting(t, args, env, "concurrency"))
	maxAckPending := streams.DefaultMaxAckPending
	if f := flagForEnv(command(t, args), "IMBI_MAX_ACK_PENDING"); f != nil {
		maxAckPending = atoi(t, setting(t, args, env, f.Name))
	}
	require.LessOrEqual(t, *so.Spec.MaxReplicaCount*concurrency, maxAckPending,
		"maxReplicaCount × concurrency exceeds the consumer's MaxAckPending")
	// The worker's own start-up check must know the largest pool.
	require.GreaterOrEqual(t, atoi(t, setting(t, args, env, "pool-size")), *so.Spec.MaxReplicaCount,
		"--pool-size must cover the ScaledObject's maxReplicaCount")
}

// ------------------------------------------------------------------ Compose

func TestComposeMatchesBinary(t *testing.T) {
	var cf composeFile
	strict(t, "compose.yaml", &cf)

	var natsNodes []string
	for name, svc := range cf.Services {
		if strings.HasPrefix(svc.Image, "nats:") {
			natsNodes = append(natsNodes, name)
		}
		for dep := range svc.DependsOn {
			require.Contains(t, cf.Services, dep, "%s depends on unknown service", name)
		}
		for _, p := range svc.Ports {
			require.True(t, strings.HasPrefix(p, "127.0.0.1:"), "%s publishes %s beyond loopback", name, p)
		}
	}
	slices.Sort(natsNodes)
	require.Len(t, natsNodes, 3, "a 3-node NATS cluster")
	routes := make([]string, len(natsNodes))
	for i, n := range natsNodes {
		routes[i] = "nats://" + n + ":6222"
	}
	for _, n := range natsNodes {
		cmd := cf.Services[n].Command
		require.Contains(t, cmd, "--jetstream", n)
		require.Contains(t, cmd, strings.Join(routes, ","), "%s must route to every node", n)
		require.Contains(t, cmd, n, "%s needs its own server name for JetStream clustering", n)
	}

	w, ok := cf.Services["worker"]
	require.True(t, ok)
	require.NotNil(t, w.Build)
	require.Equal(t, "deploy/Dockerfile", w.Build.Dockerfile)
	_, err := os.Stat(filepath.Join(w.Build.Context, w.Build.Dockerfile))
	require.NoError(t, err, "build context is relative to deploy/")
	require.NotNil(t, w.Deploy)
	require.Equal(t, 2, w.Deploy.Replicas)
	require.GreaterOrEqual(t, atoi(t, setting(t, w.Command, w.Environment, "pool-size")), w.Deploy.Replicas)
	for k, v := range w.Environment {
		checkEnv(t, "compose worker", w.Command, k, v, nil)
	}
	checkValues(t, "compose worker", w.Environment)
	requireKeyWithStore(t, "compose worker", w.Environment)
	for _, host := range strings.Split(w.Environment[cli.EnvName("nats-url")], ",") {
		h := strings.TrimPrefix(host, "nats://")
		h, _, _ = strings.Cut(h, ":")
		require.Contains(t, natsNodes, h)
	}
	require.Equal(t, "3", setting(t, w.Command, w.Environment, "replicas"), "3 replicas on a 3-node cluster")
	grace := duration(t, setting(t, w.Command, w.Environment, "shutdown-grace"))
	require.Greater(t, duration(t, w.StopGracePeriod), grace, "stop_grace_period must exceed --shutdown-grace")
	port := adminPort(t, setting(t, w.Command, w.Environment, "admin-addr"))

	// Prometheus scrapes the worker service on the admin port.
	prom, ok := cf.Services["prometheus"]
	require.True(t, ok)
	require.Contains(t, prom.Volumes, "./prometheus.yml:/etc/prometheus/prometheus.yml:ro")
	var pc prometheusConfig
	strict(t, "prometheus.yml", &pc)
	var scraped bool
	for _, sc := range pc.ScrapeConfigs {
		for _, sd := range sc.DNSSDConfigs {
			if slices.Contains(sd.Names, "worker") {
				scraped = true
				require.Equal(t, port, sd.Port)
				requireAdminRoute(t, sc.MetricsPath)
			}
		}
	}
	require.True(t, scraped, "prometheus.yml does not scrape the worker service")

	// env.example names the variables compose interpolates, nothing else.
	f, err := os.Open("env.example")
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, _ := strings.Cut(line, "=")
		require.Empty(t, value, "env.example must not hold values")
		checkEnv(t, "env.example", w.Command, name, "", nil)
	}
}

// --------------------------------------------------------------- Dockerfile

type dockerInstr struct{ op, args string }

func parseDockerfile(t *testing.T, path string) []dockerInstr {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var out []dockerInstr
	var cur strings.Builder
	for _, line := range strings.Split(string(raw), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, `\`) {
			cur.WriteString(strings.TrimSuffix(trimmed, `\`) + " ")
			continue
		}
		cur.WriteString(trimmed)
		op, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, dockerInstr{strings.ToUpper(op), strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

func TestDockerfile(t *testing.T) {
	ins := parseDockerfile(t, "Dockerfile")
	last := -1
	for i, in := range ins {
		if in.op == "FROM" {
			last = i
		}
	}
	require.Greater(t, last, 0, "multi-stage build")
	final := ins[last:]
	base := strings.Fields(final[0].args)[0]
	require.True(t, strings.HasPrefix(base, "gcr.io/distroless/static") || base == "scratch", "minimal base, got %s", base)

	var (
		user, copied, expose string
		entry, cmdArgs       []string
		env                  = map[string]string{}
	)
	for _, in := range final[1:] {
		switch in.op {
		case "USER":
			user = in.args
		case "COPY":
			f := strings.Fields(in.args)
			copied = f[len(f)-1]
		case "EXPOSE":
			expose = in.args
		case "ENV":
			k, v, ok := strings.Cut(in.args, "=")
			require.True(t, ok, "ENV k=v form")
			env[k] = v
		case "ENTRYPOINT":
			require.NoError(t, json.Unmarshal([]byte(in.args), &entry), "exec form")
		case "CMD":
			require.NoError(t, json.Unmarshal([]byte(in.args), &cmdArgs), "exec form")
		}
	}
	uid, _, _ := strings.Cut(user, ":")
	require.NotContains(t, []string{"", "0", "root"}, uid, "the final image must run as non-root")
	require.Equal(t, []string{copied}, entry, "ENTRYPOINT is the copied binary")
	require.Equal(t, "run", command(t, cmdArgs).Name())
	for k, v := range env {
		checkEnv(t, "Dockerfile ENV", cmdArgs, k, v, nil)
	}
	require.Equal(t, strconv.Itoa(adminPort(t, setting(t, cmdArgs, env, "admin-addr"))), expose)

	// The build: static, from the real main package, with the go.mod Go.
	var build string
	for _, in := range ins[:last] {
		if in.op == "RUN" && strings.Contains(in.args, "go build") {
			build = in.args
		}
	}
	require.Contains(t, build, "CGO_ENABLED=0")
	require.Contains(t, build, "-X github.com/aweber-imbi/imbi-worker/cli.Version=")
	m := regexp.MustCompile(`\./cmd/[a-z-]+`).FindString(build)
	require.NotEmpty(t, m)
	_, err := os.Stat(filepath.Join("..", m, "main.go"))
	require.NoError(t, err)
	gomod, err := os.ReadFile("../go.mod")
	require.NoError(t, err)
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	require.NotNil(t, goVersion)
	require.Contains(t, ins[0].args, "GO_VERSION="+string(goVersion[1]), "builder Go must match go.mod")

	// The context filter must not drop what the build embeds.
	ignore, err := os.ReadFile("Dockerfile.dockerignore")
	require.NoError(t, err)
	for _, line := range strings.Split(string(ignore), "\n") {
		line = strings.TrimSpace(line)
		require.False(t, line == "testdata" || line == "go.sum" || line == "cmd", "dockerignore drops %s, which the build needs", line)
	}
}

func TestMain(m *testing.M) {
	// Paths in this package are relative to deploy/.
	if _, err := os.Stat("compose.yaml"); err != nil {
		fmt.Fprintln(os.Stderr, "run from deploy/:", err)
		os.Exit(2)
	}
	os.Exit(m.Run())
}
