package console_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/aweber-imbi/imbi-worker/internal/admin"
	"github.com/aweber-imbi/imbi-worker/internal/console"
)

// TestOpenAPIMatchesRoutes: docs/openapi.yaml lists exactly the routes
// the admin server serves (the console's /api/v1 routes and the three
// open probes), with the same methods, and every documented path resolves
// to its own pattern.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	raw, err := os.ReadFile("../../docs/openapi.yaml")
	require.NoError(t, err)
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &doc))
	require.True(t, strings.HasPrefix(doc.OpenAPI, "3."))

	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	con := console.New(console.Config{Token: "x"})
	served := []string{"GET /healthz", "GET /readyz", "GET /metrics"}
	for _, r := range con.Routes() {
		if r.API {
			served = append(served, r.Method+" "+r.Pattern)
		}
	}
	slices.Sort(documented)
	slices.Sort(served)
	require.Equal(t, served, documented, "docs/openapi.yaml and the routes differ")

	mux := admin.New(admin.Config{Console: con, Metrics: http.NotFoundHandler()}).Handler().(*http.ServeMux)
	sample := strings.NewReplacer("{seq}", "42", "{id}", "abc")
	for _, d := range documented {
		method, path, _ := strings.Cut(d, " ")
		req := httptest.NewRequest(method, sample.Replace(path), nil)
		_, top := mux.Handler(req)
		if strings.HasPrefix(path, "/api/") {
			require.Equal(t, "/api/", top, d)
			require.Equal(t, d, con.Pattern(req), "%s resolves to another route", d)
			for _, other := range []string{"GET", "POST", "PUT", "DELETE"} {
				if other == method || slices.Contains(documented, other+" "+path) {
					continue
				}
				req := httptest.NewRequest(other, sample.Replace(path), nil)
				require.NotEqual(t, other+" "+path, con.Pattern(req), "%s %s is served but not documented", other, path)
				if p := con.Pattern(req); p != "" {
					require.Contains(t, documented, p, "%s %s is served by an undocumented route", other, path)
				}
			}
		} else {
			require.Equal(t, d, top)
		}
	}
}
