package console

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/aweber-imbi/imbi-worker/internal/dlq"
)

func (c *Console) apiRoutes() []Route {
	r := func(method, pattern string, h http.HandlerFunc) Route {
		return Route{Method: method, Pattern: pattern, API: true, h: h}
	}
	return []Route{
		r("GET", "/api/v1/dead-letters", c.apiList),
		r("GET", "/api/v1/dead-letters/stats", c.apiStats),
		r("GET", "/api/v1/dead-letters/{seq}", c.apiShow),
		r("POST", "/api/v1/dead-letters/{seq}/replay", c.apiReplayOne),
		r("POST", "/api/v1/dead-letters/{seq}/delete", c.apiDeleteOne),
		r("POST", "/api/v1/dead-letters/replay", c.apiReplay),
		r("POST", "/api/v1/dead-letters/purge", c.apiPurge),
		r("GET", "/api/v1/jobs", c.apiJobs),
		r("GET", "/api/v1/jobs/{id}", c.apiJob),
		r("POST", "/api/v1/jobs/{id}/cancel", c.apiJobCancel),
		r("GET", "/api/v1/outcomes", c.apiOutcomes),
		r("GET", "/api/v1/lanes", c.apiLanes),
		r("POST", "/api/v1/lanes/pause", c.apiLanePause),
		r("POST", "/api/v1/lanes/resume", c.apiLaneResume),
		r("GET", "/api/v1/actions", c.apiActions),
	}
}

// apiFail maps an error to its status code.
func apiFail(w http.ResponseWriter, err error) {
	var bad errBadRequest
	switch {
	case errors.As(err, &bad):
		writeErr(w, http.StatusBadRequest, bad.msg)
	case errors.Is(err, errNoDLQ):
		writeErr(w, http.StatusServiceUnavailable, err.Error())
	case errors.Is(err, ErrNotEnabled):
		writeErr(w, http.StatusServiceUnavailable, err.Error())
	case errors.Is(err, dlq.ErrNotFound):
		writeErr(w, http.StatusNotFound, err.Error())
	case errors.Is(err, dlq.ErrNotReplayable):
		writeErr(w, http.StatusConflict, err.Error())
	default:
		writeErr(w, http.StatusInternalServerError, err.Error())
	}
}

func intParam(r *http.Request, name string, def, lo, hi int) (int, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, badRequest("%s must be an integer in %d..%d", name, lo, hi)
	}
	return n, nil
}

func seqParam(r *http.Request) (uint64, error) {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		return 0, badRequest("seq must be a positive integer")
	}
	return seq, nil
}

func (c *Console) apiList(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r.URL.Query(), c.cfg.Now())
	if err != nil {
		apiFail(w, err)
		return
	}
	offset, err := intParam(r, "offset", 0, 0, 1<<31-1)
	if err != nil {
		apiFail(w, err)
		return
	}
	limit, err := intParam(r, "limit", DefaultPageSize, 1, MaxPageSize)
	if err != nil {
		apiFail(w, err)
		return
	}
	p, err := c.listLetters(r.Context(), q, offset, limit)
	if err != nil {
		apiFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (c *Console) apiStats(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r.URL.Query(), c.cfg.Now())
	if err != nil {
		apiFail(w, err)
		return
	}
	var bucket time.Duration
	if s := r.URL.Query().Get("bucket"); s != "" {
		if bucket, err = time.ParseDuration(s); err != nil || bucket < time.Minute {
			apiFail(w, badRequest("bucket must be a duration of at least 1m"))
			return
		}
	}
	st, err := c.stats(r.Context(), q, bucket)
	if err != nil {
		apiFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (c *Console) apiShow(w http.ResponseWriter, r *http.Request) {
	seq, err := seqParam(r)
	if err != nil {
		apiFail(w, err)
		return
	}
	v, err := c.showLetter(r.Context(), seq)
	if err != nil {
		apiFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (c *Console) apiReplayOne(w http.ResponseWriter, r *http.Request) {
	seq, err := seqParam(r)
	if err != nil {
		apiFail(w, err)
		return
	}
	res, err := c.replayOne(r.Context(), seq)
	if err != nil {
		apiFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (c *Console) apiDeleteOne(w http.ResponseWriter, r *http.Request) {
	seq, err := seqParam(r)
	if err != nil {
		apiFail(w, err)
		return
	}
	if err := c.deleteOne(r.Context(), seq); err != nil {
		apiFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, BulkResult{Matched: 1, Purged: 1})
}

// maxBody bounds a JSON request body.
const maxBody = 64 << 10

func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return badRequest("request body: %v", err)
	}
	return nil
}

func (c *Console) readBulk(w http.ResponseWriter, r *http.Request) (BulkRequest, bool) {
	var b BulkRequest
	err := decodeBody(r, &b)
	if err == nil {
		err = b.check()
	}
	if err != nil {
		apiFail(w, err)
		return b, false
	}
	return b, true
}

func (c *Console) apiReplay(w http.ResponseWriter, r *http.Request) {
	b, ok := c.readBulk(w, r)
	if !ok {
		return
	}
	if b.DryRun {
		n, err := c.count(r.Context(), b.Query)
		if err != nil {
			apiFail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, BulkResult{Matched: n, DryRun: true})
		return
	}
	st, err := c.startReplay(r.Context(), b)
	if err != nil {
		apiFail(w, err)
		return
	}
	w.Header().Set("Location", "/api/v1/jobs/"+st.ID)
	writeJSON(w, http.StatusAccepted, st)
}

func (c *Console) apiPurge(w http.ResponseWriter, r *http.Request) {
	b, ok := c.readBulk(w, r)
	if !ok {
		return
	}
	n, err := c.count(r.Context(), b.Query)
	if err != nil {
		apiFail(w, err)
		return
	}
	if b.DryRun {
		writeJSON(w, http.StatusOK, BulkResult{Matched: n, DryRun: true})
		return
	}
	purged, err := c.purge(r.Context(), b.Query)
	if err != nil {
		apiFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, BulkResult{Matched: n, Purged: purged})
}

func (c *Console) apiJobs(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"jobs": c.jobs.list()})
}

func (c *Console) apiJob(w http.ResponseWriter, r *http.Request) {
	st, ok := c.jobs.get(r.PathValue("id"))
	if !ok {
		writeErr(w, http.StatusNotFound, "no such job")
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (c *Console) apiJobCancel(w http.ResponseWriter, r *http.Request) {
	st, ok := c.jobs.cancel(r.PathValue("id"))
	if !ok {
		writeErr(w, http.StatusNotFound, "no such job")
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (c *Console) apiOutcomes(w http.ResponseWriter, r *http.Request) {
	f, err := parseOutcomeFilter(r.URL.Query(), c.cfg.Now())
	if err != nil {
		apiFail(w, err)
		return
	}
	out, err := c.outcomes(r.Context(), f)
	if err != nil {
		apiFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"outcomes": out})
}

func (c *Console) apiLanes(w http.ResponseWriter, r *http.Request) {
	out, err := c.lanes(r.Context())
	if err != nil {
		apiFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"lanes": out})
}

func (c *Console) apiLanePause(w http.ResponseWriter, r *http.Request) {
	var lr LaneRequest
	err := decodeBody(r, &lr)
	if err == nil {
		err = c.pauseLane(r.Context(), lr)
	}
	if err != nil {
		apiFail(w, err)
		return
	}
	c.apiLanes(w, r)
}

func (c *Console) apiLaneResume(w http.ResponseWriter, r *http.Request) {
	var lr LaneRequest
	err := decodeBody(r, &lr)
	if err == nil {
		err = c.resumeLane(r.Context(), lr)
	}
	if err != nil {
		apiFail(w, err)
		return
	}
	c.apiLanes(w, r)
}

func (c *Console) apiActions(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, c.actions())
}
