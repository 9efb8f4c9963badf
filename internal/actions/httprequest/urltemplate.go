package httprequest

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
)

// ErrUnsafeURL is matched (errors.Is) by a *URLError.
var ErrUnsafeURL = errors.New("http#request: unsafe url")

// URLError is a url template that could let event data choose where the
// request goes (a config error), or a rendered URL whose origin is not the
// configured one (cannot happen; checked anyway).
type URLError struct{ Reason string }

func (e *URLError) Error() string { return "url: " + e.Reason }

// Is makes errors.Is(err, ErrUnsafeURL) true.
func (e *URLError) Is(t error) bool { return t == ErrUnsafeURL }

// Bounds of template execution: output per template and the work one
// rendering may do (range iterations and template calls), and its time.
const (
	maxURLOutput    = 8 << 10
	maxHeaderOutput = 8 << 10
	maxBodyOutput   = 1 << 20
	maxTemplateTick = 100_000
	maxTemplateTime = time.Second
)

// ErrTemplateBound is matched (errors.Is) when a template's rendering
// exceeded its output size, work or time bound.
var ErrTemplateBound = errors.New("template exceeded its bound")

// tickFunc is the hidden function parseTemplate calls at the start of
// every range iteration and template call; render binds it to a counter
// and a deadline.
const tickFunc = "_imbi_tick"

// urlTemplate is the parsed url: its fixed origin and the template whose
// every action's output is escaped for where it lands (path or query).
type urlTemplate struct {
	origin origin
	tmpl   *template.Template
}

// parseURLTemplate checks that the scheme://host[:port] of text is literal
// text ending in '/' or '?' (or the whole url is literal), then rewrites
// every action so its output is escaped: pathescape before the first
// literal '?', urlquery after it. An action already ending in the right
// escaper keeps it (no double escaping). '?' may not appear inside
// {{if}}/{{range}}/{{with}}, '#' not at all, and {{define}}/{{template}}/
// {{block}} are refused: each would make the escaping context ambiguous.
func parseURLTemplate(text string) (*urlTemplate, error) {
	t, err := parseTemplate("url", text)
	if err != nil {
		return nil, err
	}
	if len(t.Templates()) > 1 {
		return nil, &URLError{Reason: "{{define}} and {{block}} are not allowed in url"}
	}
	nodes := t.Tree.Root.Nodes
	if len(nodes) == 0 {
		return nil, &URLError{Reason: "empty"}
	}
	first, ok := nodes[0].(*parse.TextNode)
	if !ok {
		return nil, &URLError{Reason: "must start with a literal scheme://host[:port]/ (event data may fill only the path and the query)"}
	}
	lead := strings.TrimLeft(string(first.Text), " \t\r\n")
	first.Text = []byte(lead)
	o, err := literalOrigin(lead, len(nodes) == 1)
	if err != nil {
		return nil, err
	}
	rw := rewriter{
		path:  mustCmd("pathescape"),
		query: mustCmd("urlquery"),
	}
	if err := rw.list(t.Tree.Root, 0); err != nil {
		return nil, err
	}
	addTicks(t)
	return &urlTemplate{origin: o, tmpl: t}, nil
}

// literalOrigin finds the origin at the start of the url's literal text.
// whole: the text is the entire url (no template action follows).
func literalOrigin(lead string, whole bool) (origin, error) {
	i := strings.Index(lead, "://")
	if i < 0 {
		return origin{}, &URLError{Reason: "must start with a literal http:// or https:// origin"}
	}
	end := strings.IndexAny(lead[i+3:], "/?#")
	if end < 0 {
		if !whole {
			return origin{}, &URLError{Reason: "the scheme://host[:port] part must be literal text ending in '/' or '?' before the first {{ }} (event data may fill only the path and the query)"}
		}
		end = len(lead)
	} else {
		end += i + 3
	}
	u, err := url.Parse(lead[:end])
	if err != nil {
		return origin{}, &URLError{Reason: fmt.Sprintf("origin %q: %v", lead[:end], err)}
	}
	scheme := strings.ToLower(u.Scheme)
	switch {
	case scheme != "http" && scheme != "https":
		return origin{}, &URLError{Reason: "scheme must be http or https"}
	case u.User != nil:
		return origin{}, &URLError{Reason: "user info (user:password@) is not allowed; use the token credential"}
	case u.Hostname() == "":
		return origin{}, &URLError{Reason: "no host"}
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return origin{}, &URLError{Reason: fmt.Sprintf("port %q", p)}
		}
	}
	return originOf(scheme, u.Hostname(), u.Port()), nil
}

// rewriter appends the escaper to every output action.
type rewriter struct {
	path, query *parse.CommandNode
	inQuery     bool
}

func (rw *rewriter) list(l *parse.ListNode, depth int) error {
	if l == nil {
		return nil
	}
	for _, n := range l.Nodes {
		if err := rw.node(n, depth); err != nil {
			return err
		}
	}
	return nil
}

func (rw *rewriter) node(n parse.Node, depth int) error {
	switch n := n.(type) {
	case *parse.TextNode:
		if strings.ContainsRune(string(n.Text), '#') {
			return &URLError{Reason: "a fragment ('#') is never sent; remove it"}
		}
		if strings.ContainsRune(string(n.Text), '?') {
			if depth > 0 {
				return &URLError{Reason: "'?' must be literal text outside {{if}}, {{range}} and {{with}}"}
			}
			rw.inQuery = true
		}
	case *parse.ActionNode:
		if len(n.Pipe.Decl) > 0 {
			return nil // an assignment prints nothing
		}
		want := rw.path
		if rw.inQuery {
			want = rw.query
		}
		last := n.Pipe.Cmds[len(n.Pipe.Cmds)-1]
		if endsIn(last, "urlquery") || (!rw.inQuery && endsIn(last, "pathescape")) {
			return nil
		}
		n.Pipe.Cmds = append(n.Pipe.Cmds, want)
	case *parse.IfNode:
		return rw.branch(&n.BranchNode, depth)
	case *parse.RangeNode:
		return rw.branch(&n.BranchNode, depth)
	case *parse.WithNode:
		return rw.branch(&n.BranchNode, depth)
	case *parse.TemplateNode:
		return &URLError{Reason: "{{template}} is not allowed in url"}
	}
	return nil
}

func (rw *rewriter) branch(b *parse.BranchNode, depth int) error {
	if err := rw.list(b.List, depth+1); err != nil {
		return err
	}
	return rw.list(b.ElseList, depth+1)
}

// endsIn reports whether cmd is the bare function name fn.
func endsIn(cmd *parse.CommandNode, fn string) bool {
	if len(cmd.Args) != 1 {
		return false
	}
	id, ok := cmd.Args[0].(*parse.IdentifierNode)
	return ok && id.Ident == fn
}

// mustCmd is the command node "fn" (a pipeline stage), taken from a
// parsed one-line template so it carries a tree of its own.
func mustCmd(fn string) *parse.CommandNode {
	t := template.Must(template.New(fn).Funcs(templateFuncs).Parse("{{ 0 | " + fn + " }}"))
	cmds := t.Tree.Root.Nodes[0].(*parse.ActionNode).Pipe.Cmds
	return cmds[len(cmds)-1]
}

// addTicks puts a call of tickFunc at the start of every template body and
// range body of t, so render can stop a rendering that loops too long
// even when it prints nothing.
func addTicks(t *template.Template) {
	tick := template.Must(template.New(tickFunc).Funcs(templateFuncs).Parse("{{ " + tickFunc + " }}")).Tree.Root.Nodes[0]
	var walk func(l *parse.ListNode)
	walk = func(l *parse.ListNode) {
		if l == nil {
			return
		}
		for _, n := range l.Nodes {
			switch n := n.(type) {
			case *parse.IfNode:
				walk(n.List)
				walk(n.ElseList)
			case *parse.WithNode:
				walk(n.List)
				walk(n.ElseList)
			case *parse.RangeNode:
				walk(n.List)
				walk(n.ElseList)
				n.List.Nodes = append([]parse.Node{tick}, n.List.Nodes...)
			}
		}
	}
	for _, sub := range t.Templates() {
		if sub.Tree == nil || sub.Tree.Root == nil {
			continue
		}
		walk(sub.Tree.Root)
		sub.Tree.Root.Nodes = append([]parse.Node{tick}, sub.Tree.Root.Nodes...)
	}
}

// ticker bounds one rendering's work and time.
type ticker struct {
	n        int
	deadline time.Time
}

func (k *ticker) tick() (string, error) {
	k.n++
	if k.n > maxTemplateTick {
		return "", fmt.Errorf("%w: more than %d range iterations and template calls", ErrTemplateBound, maxTemplateTick)
	}
	if time.Now().After(k.deadline) {
		return "", fmt.Errorf("%w: rendering took longer than %s", ErrTemplateBound, maxTemplateTime)
	}
	return "", nil
}

// limitWriter is a strings.Builder that fails past max bytes.
type limitWriter struct {
	b   strings.Builder
	max int
}

func (w *limitWriter) Write(p []byte) (int, error) {
	if w.b.Len()+len(p) > w.max {
		return 0, fmt.Errorf("%w: output longer than %d bytes", ErrTemplateBound, w.max)
	}
	return w.b.Write(p)
}

// check verifies a rendered URL kept the configured origin and returns
// it parsed.
func (u *urlTemplate) check(rendered string) (*url.URL, error) {
	parsed, err := url.Parse(rendered)
	if err != nil {
		return nil, &URLError{Reason: "rendered url does not parse"}
	}
	if parsed.User != nil || originOf(parsed.Scheme, parsed.Hostname(), parsed.Port()) != u.origin || parsed.Opaque != "" {
		return nil, &URLError{Reason: "rendered url left the configured origin " + u.origin.String()}
	}
	parsed.Fragment, parsed.RawFragment = "", ""
	return parsed, nil
}
