package console

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
)

// Charts are server-rendered SVG: the templates draw these shapes, so
// every label goes through html/template's escaping, and colours come
// from classes in console.css (no inline style, which the CSP forbids).

// barChart is a stacked vertical bar chart: dead letters per time bucket,
// one segment per reason.
type barChart struct {
	W, H   int
	Bars   []vbar
	Legend []legendItem
	Max    int
	Ticks  []tick
	Axis   []tick
	Empty  bool
}

type vbar struct {
	X, W  int
	Segs  []seg
	Title string
}

type seg struct {
	X, Y, W, H int
	Class      string
	Title      string
}

type legendItem struct {
	Label, Class string
	Count        int
}

type tick struct {
	X, Y  int
	Label string
}

const (
	chartW, chartH   = 720, 220
	plotL, plotB     = 40, 30
	plotTop, plotRgt = 10, 10
)

func reasonChart(st Stats) *barChart {
	c := &barChart{W: chartW, H: chartH, Empty: st.Total == 0}
	for _, b := range st.Buckets {
		c.Max = max(c.Max, b.Total)
	}
	plotH := chartH - plotB - plotTop
	plotW := chartW - plotL - plotRgt
	n := max(len(st.Buckets), 1)
	slot := plotW / n
	reasons := make([]string, 0, len(st.ByReason))
	for r := range st.ByReason {
		reasons = append(reasons, r)
	}
	slices.SortFunc(reasons, func(a, b string) int {
		if d := cmp.Compare(st.ByReason[b], st.ByReason[a]); d != 0 {
			return d
		}
		return cmp.Compare(a, b)
	})
	for _, r := range reasons {
		c.Legend = append(c.Legend, legendItem{Label: r, Class: reasonClass(r), Count: st.ByReason[r]})
	}
	scale := func(v int) int {
		if c.Max == 0 {
			return 0
		}
		return v * plotH / c.Max
	}
	for i, b := range st.Buckets {
		x := plotL + i*slot
		vb := vbar{X: x, W: max(slot-2, 1), Title: fmt.Sprintf("%s: %d", b.Start.UTC().Format("01-02 15:04"), b.Total)}
		y := chartH - plotB
		for _, r := range reasons {
			n := b.Counts[r]
			if n == 0 {
				continue
			}
			h := max(scale(n), 1)
			y -= h
			vb.Segs = append(vb.Segs, seg{X: x, Y: y, W: vb.W, H: h, Class: reasonClass(r), Title: fmt.Sprintf("%s %s: %d", b.Start.UTC().Format("01-02 15:04"), r, n)})
		}
		c.Bars = append(c.Bars, vb)
		if len(st.Buckets) <= 12 || i%(len(st.Buckets)/6+1) == 0 {
			c.Axis = append(c.Axis, tick{X: x, Y: chartH - 10, Label: b.Start.UTC().Format("15:04")})
		}
	}
	for _, v := range []int{0, c.Max / 2, c.Max} {
		c.Ticks = append(c.Ticks, tick{X: plotL - 6, Y: chartH - plotB - scale(v) + 4, Label: strconv.Itoa(v)})
	}
	return c
}

// hbarChart is a stacked horizontal bar chart: outcomes per handler, one
// segment per status.
type hbarChart struct {
	W, H   int
	Rows   []hrow
	Legend []legendItem
	Empty  bool
}

type hrow struct {
	Y      int
	LabelY int
	Label  string
	Total  int
	Segs   []seg
}

func statusClass(s string) string {
	if slices.Contains(OutcomeStatuses, s) {
		return "s-" + s
	}
	return "s-other"
}

func outcomeChart(outs []Outcome) *hbarChart {
	const rowH, labelW, w = 26, 240, 720
	per := map[string]map[string]int{}
	totals := map[string]int{}
	statusCount := map[string]int{}
	for _, o := range outs {
		if per[o.Handler] == nil {
			per[o.Handler] = map[string]int{}
		}
		per[o.Handler][o.Status]++
		totals[o.Handler]++
		statusCount[o.Status]++
	}
	handlers := make([]string, 0, len(per))
	maxTotal := 0
	for h := range per {
		handlers = append(handlers, h)
		maxTotal = max(maxTotal, totals[h])
	}
	slices.SortFunc(handlers, func(a, b string) int {
		if d := cmp.Compare(totals[b], totals[a]); d != 0 {
			return d
		}
		return cmp.Compare(a, b)
	})
	if len(handlers) > 15 {
		handlers = handlers[:15]
	}
	c := &hbarChart{W: w, H: max(len(handlers), 1)*rowH + 10, Empty: len(outs) == 0}
	statuses := append(slices.Clone(OutcomeStatuses), "other")
	for _, s := range OutcomeStatuses {
		if statusCount[s] > 0 {
			c.Legend = append(c.Legend, legendItem{Label: s, Class: statusClass(s), Count: statusCount[s]})
		}
	}
	plotW := w - labelW - 50
	for i, h := range handlers {
		y := 5 + i*rowH
		row := hrow{Y: y, LabelY: y + 16, Label: h, Total: totals[h]}
		x := labelW
		for _, s := range statuses {
			n := per[h][s]
			if s == "other" {
				n = 0
				for k, v := range per[h] {
					if !slices.Contains(OutcomeStatuses, k) {
						n += v
					}
				}
			}
			if n == 0 {
				continue
			}
			sw := max(n*plotW/max(maxTotal, 1), 1)
			row.Segs = append(row.Segs, seg{X: x, Y: y, W: sw, H: rowH - 6, Class: statusClass(s), Title: fmt.Sprintf("%s %s: %d", h, s, n)})
			x += sw
		}
		c.Rows = append(c.Rows, row)
	}
	return c
}
