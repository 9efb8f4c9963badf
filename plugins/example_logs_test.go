package plugins_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aweber-imbi/imbi-worker/plugins"
)

// StaticLogs is a logs plugin (plugin_type "logs") with the optional
// histogram capability (plugins.LogsHistogrammer).
type StaticLogs struct{}

func (StaticLogs) Manifest() plugins.PluginManifest {
	m := plugins.NewManifest("static-logs", "Static logs", plugins.TypeLogs)
	m.SupportsHistogram = true // it implements Histogram
	return m
}

func (StaticLogs) Search(_ context.Context, pctx plugins.PluginContext, _ plugins.Credentials, q plugins.LogQuery) (plugins.LogResult, error) {
	if q.Cursor != nil {
		return plugins.LogResult{}, &plugins.CursorExpiredError{Message: "cursor " + *q.Cursor + " expired"}
	}
	query, err := plugins.ExpandTemplate("service:${project_slug}", plugins.TemplateVars(pctx))
	if err != nil {
		return plugins.LogResult{}, err
	}
	return plugins.LogResult{Entries: []plugins.LogEntry{{Timestamp: q.EndTime, Message: "matched " + query}}}, nil
}

func (StaticLogs) Schema(context.Context, plugins.PluginContext, plugins.Credentials) ([]map[string]any, error) {
	return []map[string]any{{"name": "message", "label": "Message"}}, nil
}

func (StaticLogs) Histogram(_ context.Context, _ plugins.PluginContext, _ plugins.Credentials, q plugins.LogQuery, buckets int) ([]plugins.LogHistogramBucket, error) {
	return []plugins.LogHistogramBucket{{Timestamp: q.StartTime, Count: buckets}}, nil
}

// A logs plugin. plugins.Histogram calls the optional capability, with
// Python's default bucket count (60) for 0.
func ExampleLogsPlugin() {
	var p plugins.LogsPlugin = StaticLogs{}
	ctx, pctx := context.Background(), plugins.PluginContext{ProjectID: "p1", ProjectSlug: "api", OrgSlug: "acme"}
	end := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	q := plugins.LogQuery{StartTime: end.Add(-time.Hour), EndTime: end, Limit: plugins.DefaultLogLimit}
	res, _ := p.Search(ctx, pctx, nil, q)
	fmt.Println(res.Entries[0].Message)
	b, _ := plugins.Histogram(ctx, p, pctx, nil, q, 0)
	fmt.Println(b[0].Count)
	stale := "c1"
	q.Cursor = &stale
	_, err := p.Search(ctx, pctx, nil, q)
	fmt.Println(err, errors.Is(err, plugins.ErrCursorExpired))
	// Output:
	// matched service:api
	// 60
	// cursor c1 expired true
}
