package admin_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/admin"
)

// Config.Console gets /api/ and /ui/ and nothing else; without it both
// are 404 and the probes answer as before.
func TestConsoleRoutes(t *testing.T) {
	console := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	with := admin.New(admin.Config{Console: console}).Handler()
	without := admin.New(admin.Config{}).Handler()
	for _, tc := range []struct {
		path          string
		with, without int
	}{
		{"/api/v1/dead-letters", http.StatusTeapot, http.StatusNotFound},
		{"/ui/", http.StatusTeapot, http.StatusNotFound},
		{"/ui/dead-letters/7", http.StatusTeapot, http.StatusNotFound},
		{"/ui", http.StatusTemporaryRedirect, http.StatusNotFound},
		{"/healthz", http.StatusOK, http.StatusOK},
		{"/", http.StatusNotFound, http.StatusNotFound},
	} {
		for _, h := range []struct {
			h    http.Handler
			want int
		}{{with, tc.with}, {without, tc.without}} {
			rec := httptest.NewRecorder()
			h.h.ServeHTTP(rec, httptest.NewRequest("GET", tc.path, nil))
			require.Equal(t, h.want, rec.Code, tc.path)
		}
	}
}
