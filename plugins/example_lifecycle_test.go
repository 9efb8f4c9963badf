package plugins_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/aweber-imbi/imbi-worker/plugins"
)

// Archiver is a lifecycle plugin (plugin_type "lifecycle"): it reacts to a
// project being archived.
type Archiver struct{}

func (Archiver) Manifest() plugins.PluginManifest {
	return plugins.NewManifest("archiver", "Archiver", plugins.TypeLifecycle)
}

func (Archiver) OnProjectArchived(_ context.Context, pctx plugins.PluginContext, _ plugins.Credentials) (plugins.LifecycleResult, error) {
	msg := "archived repository of " + pctx.ProjectSlug
	return plugins.LifecycleResult{Status: plugins.LifecycleOK, Message: &msg, Artifacts: map[string]string{}}, nil
}

// A lifecycle plugin. Without the optional LifecycleUnarchiver,
// plugins.OnProjectUnarchived reports plugins.ErrNotImplemented.
func ExampleLifecyclePlugin() {
	var p plugins.LifecyclePlugin = Archiver{}
	ctx, pctx := context.Background(), plugins.PluginContext{ProjectID: "p1", ProjectSlug: "api", OrgSlug: "acme"}
	res, _ := p.OnProjectArchived(ctx, pctx, nil)
	fmt.Println(res.Status, *res.Message)
	_, err := plugins.OnProjectUnarchived(ctx, p, pctx, nil)
	fmt.Println(errors.Is(err, plugins.ErrNotImplemented))
	// Output:
	// ok archived repository of api
	// true
}
