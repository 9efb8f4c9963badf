package console

import (
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aweber-imbi/imbi-worker/internal/dlq"
	"github.com/aweber-imbi/imbi-worker/wire"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// pageData is what every page template gets.
type pageData struct {
	Title    string
	Nav      string
	CSRF     string
	ReadOnly bool
	Message  string // a notice (fixed texts and numbers, never message data)
	Error    string
	Data     any
}

type templates struct {
	pages map[string]*template.Template
}

var funcs = template.FuncMap{
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"add":         func(a, b int) int { return a + b },
	"reasonClass": reasonClass,
	"join":        strings.Join,
}

func reasonClass(r string) string {
	if i := slices.Index(wire.Reasons, wire.Reason(r)); i >= 0 {
		return "r" + strconv.Itoa(i)
	}
	return "rx"
}

func mustTemplates() *templates {
	t := &templates{pages: map[string]*template.Template{}}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t.pages[base] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n))
	}
	return t
}

func (t *templates) render(w io.Writer, page string, d pageData) {
	p := t.pages[page]
	if p == nil {
		panic("console: no template " + page)
	}
	_ = p.ExecuteTemplate(w, "layout.html", d)
}

func (c *Console) static(w http.ResponseWriter, r *http.Request) {
	sub, _ := fs.Sub(staticFS, "static")
	w.Header().Set("Cache-Control", "public, max-age=300")
	http.StripPrefix("/ui/static/", http.FileServerFS(sub)).ServeHTTP(w, r)
}

func (c *Console) uiRoutes() []Route {
	r := func(method, pattern string, h http.HandlerFunc) Route {
		return Route{Method: method, Pattern: pattern, h: h}
	}
	return []Route{
		r("GET", "/ui/{$}", c.uiOverview),
		r("GET", "/ui/dead-letters", c.uiLetters),
		r("GET", "/ui/dead-letters/{seq}", c.uiLetter),
		r("POST", "/ui/dead-letters/{seq}/replay", c.uiReplayOne),
		r("POST", "/ui/dead-letters/{seq}/delete", c.uiDeleteOne),
		r("POST", "/ui/dead-letters/replay", c.uiBulk),
		r("POST", "/ui/dead-letters/purge", c.uiBulk),
		r("GET", "/ui/jobs", c.uiJobs),
		r("GET", "/ui/jobs/{id}", c.uiJob),
		r("POST", "/ui/jobs/{id}/cancel", c.uiJobCancel),
		r("GET", "/ui/outcomes", c.uiOutcomes),
		r("GET", "/ui/lanes", c.uiLanes),
		r("POST", "/ui/lanes/pause", c.uiLaneAction),
		r("POST", "/ui/lanes/resume", c.uiLaneAction),
		r("GET", "/ui/actions", c.uiActions),
		r("POST", "/ui/logout", c.uiLogout),
	}
}

func (c *Console) page(w http.ResponseWriter, r *http.Request, code int, name, nav, title string, data any, msg, errText string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	c.tpl.render(w, name, pageData{Title: title, Nav: nav, CSRF: c.csrfToken(sessionOf(r)), ReadOnly: c.cfg.ReadOnly, Message: msg, Error: errText, Data: data})
}

// uiError renders err on the page it happened on.
func (c *Console) uiError(w http.ResponseWriter, r *http.Request, nav string, err error) {
	code := http.StatusInternalServerError
	var bad errBadRequest
	switch {
	case errors.As(err, &bad):
		code = http.StatusBadRequest
	case errors.Is(err, errNoDLQ), errors.Is(err, ErrNotEnabled):
		code = http.StatusServiceUnavailable
	}
	c.page(w, r, code, "error", nav, http.StatusText(code), nil, "", err.Error())
}

// notices are the only texts a redirect can ask a page to show.
var notices = map[string]string{
	"replayed": "Replayed letter %s: it is back on the work stream.",
	"deleted":  "Deleted letter %s.",
	"purged":   "Purged %s letters.",
	"paused":   "Lane paused.",
	"resumed":  "Lane resumed.",
}

func notice(v url.Values) string {
	f, ok := notices[v.Get("done")]
	if !ok {
		return ""
	}
	if strings.Contains(f, "%s") {
		n, err := strconv.ParseUint(v.Get("n"), 10, 64)
		if err != nil {
			return ""
		}
		return fmt.Sprintf(f, strconv.FormatUint(n, 10))
	}
	return f
}

// overviewData feeds the overview page.
type overviewData struct {
	Letters     *barChart
	Total       int
	Outcomes    *hbarChart
	OutcomesOff bool
	OutcomesErr string
}

func (c *Console) uiOverview(w http.ResponseWriter, r *http.Request) {
	now := c.cfg.Now().UTC()
	st, err := c.stats(r.Context(), Query{Since: now.Add(-24 * time.Hour)}, time.Hour)
	if err != nil {
		c.uiError(w, r, "overview", err)
		return
	}
	d := overviewData{Letters: reasonChart(st), Total: st.Total}
	outs, err := c.outcomes(r.Context(), OutcomeFilter{Since: now.Add(-24 * time.Hour), Limit: MaxOutcomes})
	switch {
	case errors.Is(err, ErrNotEnabled):
		d.OutcomesOff = true
	case err != nil:
		d.OutcomesErr = err.Error()
	default:
		d.Outcomes = outcomeChart(outs)
	}
	c.page(w, r, http.StatusOK, "overview", "overview", "Overview", d, "", "")
}

// lettersData feeds the dead-letter list.
type lettersData struct {
	Page     Page
	Filter   url.Values // the filter only, for links and hidden fields
	FilterQS string
	Reasons  []string
	Reason   string
	Handler  string
	ChainID  string
	Since    string
	Until    string
	Q        string
	PrevQS   string
	NextQS   string
	Hidden   [][2]string
	ShowFrom int
	ShowTo   int
	IsFilter bool
}

var filterKeys = []string{"reason", "handler", "chain_id", "since", "until", "q"}

func filterValues(v url.Values) url.Values {
	out := url.Values{}
	for _, k := range filterKeys {
		for _, s := range v[k] {
			if s = strings.TrimSpace(s); s != "" {
				out.Add(k, s)
			}
		}
	}
	return out
}

func reasonNames() []string {
	out := make([]string, 0, len(wire.Reasons))
	for _, r := range wire.Reasons {
		out = append(out, string(r))
	}
	return out
}

func (c *Console) uiLetters(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	q, err := parseQuery(v, c.cfg.Now())
	if err != nil {
		c.uiError(w, r, "dead-letters", err)
		return
	}
	offset, err := intParam(r, "offset", 0, 0, 1<<31-1)
	if err != nil {
		c.uiError(w, r, "dead-letters", err)
		return
	}
	p, err := c.listLetters(r.Context(), q, offset, DefaultPageSize)
	if err != nil {
		c.uiError(w, r, "dead-letters", err)
		return
	}
	fv := filterValues(v)
	d := lettersData{Page: p, Filter: fv, FilterQS: fv.Encode(), Reasons: reasonNames(),
		Reason: fv.Get("reason"), Handler: fv.Get("handler"), ChainID: fv.Get("chain_id"),
		Since: fv.Get("since"), Until: fv.Get("until"), Q: fv.Get("q"), IsFilter: !q.IsZero()}
	for _, k := range filterKeys {
		for _, s := range fv[k] {
			d.Hidden = append(d.Hidden, [2]string{k, s})
		}
	}
	if offset > 0 {
		pv := filterValues(v)
		pv.Set("offset", strconv.Itoa(max(0, offset-DefaultPageSize)))
		d.PrevQS = pv.Encode()
	}
	if offset+len(p.Letters) < p.Total {
		nv := filterValues(v)
		nv.Set("offset", strconv.Itoa(offset+DefaultPageSize))
		d.NextQS = nv.Encode()
	}
	if len(p.Letters) > 0 {
		d.ShowFrom, d.ShowTo = offset+1, offset+len(p.Letters)
	}
	c.page(w, r, http.StatusOK, "letters", "dead-letters", "Dead letters", d, notice(v), "")
}

func (c *Console) uiLetter(w http.ResponseWriter, r *http.Request) {
	seq, err := seqParam(r)
	if err == nil {
		var lv LetterView
		lv, err = c.showLetter(r.Context(), seq)
		if err == nil {
			c.page(w, r, http.StatusOK, "letter", "dead-letters", fmt.Sprintf("Dead letter %d", seq), lv, notice(r.URL.Query()), "")
			return
		}
	}
	if errors.Is(err, dlq.ErrNotFound) {
		c.page(w, r, http.StatusNotFound, "error", "dead-letters", "Not found", nil, "", err.Error())
		return
	}
	c.uiError(w, r, "dead-letters", err)
}

func (c *Console) back(w http.ResponseWriter, r *http.Request, path string, extra url.Values) {
	v := filterValues(r.PostForm)
	for k, vs := range extra {
		v[k] = vs
	}
	u := path
	if len(v) > 0 {
		u += "?" + v.Encode()
	}
	http.Redirect(w, r, u, http.StatusSeeOther)
}

func (c *Console) uiReplayOne(w http.ResponseWriter, r *http.Request) {
	seq, err := seqParam(r)
	if err == nil {
		_, err = c.replayOne(r.Context(), seq)
	}
	if err != nil {
		c.uiError(w, r, "dead-letters", err)
		return
	}
	c.back(w, r, "/ui/dead-letters", url.Values{"done": {"replayed"}, "n": {strconv.FormatUint(seq, 10)}})
}

func (c *Console) uiDeleteOne(w http.ResponseWriter, r *http.Request) {
	seq, err := seqParam(r)
	if err == nil {
		err = c.deleteOne(r.Context(), seq)
	}
	if err != nil {
		c.uiError(w, r, "dead-letters", err)
		return
	}
	c.back(w, r, "/ui/dead-letters", url.Values{"done": {"deleted"}, "n": {strconv.FormatUint(seq, 10)}})
}

// confirmData feeds the bulk confirmation page (the dry run).
type confirmData struct {
	Action  string // "replay" or "purge"
	Matched int
	Hidden  [][2]string
	Rate    string
	All     bool
}

// uiBulk is bulk replay and purge: the first post (no confirm=yes) is the
// dry run, showing how many letters the filter matches; the second acts.
func (c *Console) uiBulk(w http.ResponseWriter, r *http.Request) {
	action := "replay"
	if strings.HasSuffix(r.URL.Path, "/purge") {
		action = "purge"
	}
	q, err := parseQuery(r.PostForm, c.cfg.Now())
	if err != nil {
		c.uiError(w, r, "dead-letters", err)
		return
	}
	b := BulkRequest{Query: q, All: r.PostFormValue("all") == "true"}
	rateText := strings.TrimSpace(r.PostFormValue("rate"))
	if rateText == "" {
		rateText = strconv.FormatFloat(DefaultReplayRate, 'f', -1, 64)
	}
	rate, perr := strconv.ParseFloat(rateText, 64)
	if perr != nil {
		c.uiError(w, r, "dead-letters", badRequest("rate must be a number of letters per second"))
		return
	}
	b.Rate = &rate
	if err := b.check(); err != nil {
		c.uiError(w, r, "dead-letters", err)
		return
	}
	if r.PostFormValue("confirm") != "yes" {
		n, err := c.count(r.Context(), q)
		if err != nil {
			c.uiError(w, r, "dead-letters", err)
			return
		}
		d := confirmData{Action: action, Matched: n, Rate: rateText, All: b.All}
		fv := filterValues(r.PostForm)
		for _, k := range filterKeys {
			for _, s := range fv[k] {
				d.Hidden = append(d.Hidden, [2]string{k, s})
			}
		}
		c.page(w, r, http.StatusOK, "confirm", "dead-letters", "Confirm "+action, d, "", "")
		return
	}
	if action == "purge" {
		n, err := c.purge(r.Context(), q)
		if err != nil {
			c.uiError(w, r, "dead-letters", err)
			return
		}
		c.back(w, r, "/ui/dead-letters", url.Values{"done": {"purged"}, "n": {strconv.Itoa(n)}})
		return
	}
	st, err := c.startReplay(r.Context(), b)
	if err != nil {
		c.uiError(w, r, "dead-letters", err)
		return
	}
	http.Redirect(w, r, "/ui/jobs/"+url.PathEscape(st.ID), http.StatusSeeOther)
}

func (c *Console) uiJobs(w http.ResponseWriter, r *http.Request) {
	c.page(w, r, http.StatusOK, "jobs", "jobs", "Replay jobs", c.jobs.list(), "", "")
}

func (c *Console) uiJob(w http.ResponseWriter, r *http.Request) {
	st, ok := c.jobs.get(r.PathValue("id"))
	if !ok {
		c.page(w, r, http.StatusNotFound, "error", "jobs", "Not found", nil, "", "no such job")
		return
	}
	c.page(w, r, http.StatusOK, "job", "jobs", "Replay job", st, "", "")
}

func (c *Console) uiJobCancel(w http.ResponseWriter, r *http.Request) {
	st, ok := c.jobs.cancel(r.PathValue("id"))
	if !ok {
		c.page(w, r, http.StatusNotFound, "error", "jobs", "Not found", nil, "", "no such job")
		return
	}
	http.Redirect(w, r, "/ui/jobs/"+url.PathEscape(st.ID), http.StatusSeeOther)
}

// outcomesData feeds the outcomes page.
type outcomesData struct {
	Off      bool
	Outcomes []Outcome
	Chart    *hbarChart
	Handler  string
	Status   string
	Project  string
	Statuses []string
}

func (c *Console) uiOutcomes(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	f, err := parseOutcomeFilter(v, c.cfg.Now())
	if err != nil {
		c.uiError(w, r, "outcomes", err)
		return
	}
	d := outcomesData{Handler: f.Handler, Status: f.Status, Project: f.Project, Statuses: OutcomeStatuses}
	outs, err := c.outcomes(r.Context(), f)
	switch {
	case errors.Is(err, ErrNotEnabled):
		d.Off = true
	case err != nil:
		c.uiError(w, r, "outcomes", err)
		return
	default:
		d.Outcomes, d.Chart = outs, outcomeChart(outs)
	}
	c.page(w, r, http.StatusOK, "outcomes", "outcomes", "Outcomes", d, "", "")
}

type lanesData struct {
	Off   bool
	Lanes []Lane
}

func (c *Console) uiLanes(w http.ResponseWriter, r *http.Request) {
	d := lanesData{}
	ls, err := c.lanes(r.Context())
	switch {
	case errors.Is(err, ErrNotEnabled):
		d.Off = true
	case err != nil:
		c.uiError(w, r, "lanes", err)
		return
	default:
		d.Lanes = ls
	}
	c.page(w, r, http.StatusOK, "lanes", "lanes", "Lanes", d, notice(r.URL.Query()), "")
}

func (c *Console) uiLaneAction(w http.ResponseWriter, r *http.Request) {
	lr := LaneRequest{Plugin: r.PostFormValue("plugin"), PluginID: r.PostFormValue("plugin_id"),
		Until: strings.TrimSpace(r.PostFormValue("until")), Reason: r.PostFormValue("reason")}
	var err error
	done := "paused"
	if strings.HasSuffix(r.URL.Path, "/resume") {
		done = "resumed"
		err = c.resumeLane(r.Context(), lr)
	} else {
		err = c.pauseLane(r.Context(), lr)
	}
	if err != nil {
		c.uiError(w, r, "lanes", err)
		return
	}
	http.Redirect(w, r, "/ui/lanes?done="+done, http.StatusSeeOther)
}

func (c *Console) uiActions(w http.ResponseWriter, r *http.Request) {
	cat, err := decodeCatalog(c.actions())
	if err != nil {
		c.uiError(w, r, "actions", err)
		return
	}
	c.page(w, r, http.StatusOK, "actions", "actions", "Actions", cat, "", "")
}

func (c *Console) uiLogout(w http.ResponseWriter, r *http.Request) {
	c.endSession(sessionOf(r))
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}
