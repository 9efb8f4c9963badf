package deploy_test

import (
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"
)

// The plugin-host Deployment parses strictly, is listed by its
// kustomization, reads the NATS URL from the workers' ConfigMap and the
// Fernet key from their Secret, and its args parse with the real
// imbi-plugin-host argument parser (when the test venv is available).
func TestPluginHostDeployment(t *testing.T) {
	var d deployment
	strict(t, "kubernetes/plugin-host/deployment.yaml", &d)
	var k kustomization
	strict(t, "kubernetes/plugin-host/kustomization.yaml", &k)
	require.Equal(t, []string{"deployment.yaml"}, k.Resources)
	require.Equal(t, "Deployment", d.Kind)
	c := d.Spec.Template.Spec.Containers
	require.Len(t, c, 1)
	require.Equal(t, "imbi-worker", c[0].EnvFrom[0].ConfigMapRef.Name)
	var cm configMap
	strict(t, "kubernetes/configmap.yaml", &cm)
	require.Contains(t, cm.Data, "IMBI_NATS_URL")
	var keyRef bool
	for _, e := range c[0].Env {
		if e.Name == "IMBI_AUTH_ENCRYPTION_KEY" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			keyRef = e.ValueFrom.SecretKeyRef.Name == "imbi-worker"
		}
	}
	require.True(t, keyRef, "the host decrypts with the workers' key")

	py := os.Getenv("IMBI_TEST_PYTHON")
	if py == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("IMBI_TEST_PYTHON is not set")
		}
		t.Skip("IMBI_TEST_PYTHON not set")
	}
	args := append([]string{"-c", "import sys; from imbi_worker_client.host.cli import parse_args; parse_args(sys.argv[1:])"}, c[0].Args...)
	out, err := exec.Command(py, args...).CombinedOutput()
	require.NoError(t, err, "%s", out)
}
