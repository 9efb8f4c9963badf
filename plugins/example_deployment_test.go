package plugins_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/aweber-imbi/imbi-worker/plugins"
)

// DemoDeploy is a deployment plugin (plugin_type "deployment"): refs,
// commits and deployment runs of a repository.
type DemoDeploy struct{}

func (DemoDeploy) Manifest() plugins.PluginManifest {
	return plugins.NewManifest("demo-deploy", "Demo deploy", plugins.TypeDeployment)
}

func (DemoDeploy) ListRefs(context.Context, plugins.PluginContext, plugins.Credentials, plugins.RefListKind, *string) ([]plugins.Ref, error) {
	return []plugins.Ref{{Name: "main", Kind: plugins.RefBranch, SHA: "abc123", IsDefault: true}}, nil
}

func (DemoDeploy) ListCommits(_ context.Context, _ plugins.PluginContext, _ plugins.Credentials, _ string, limit int) ([]plugins.Commit, error) {
	return []plugins.Commit{{SHA: "abc123", ShortSHA: "abc", Message: "fix", CIStatus: plugins.CheckPass}}[:min(limit, 1)], nil
}

func (DemoDeploy) ResolveCommittish(_ context.Context, _ plugins.PluginContext, _ plugins.Credentials, c string) (plugins.Commit, error) {
	return plugins.Commit{SHA: c, ShortSHA: c[:3], Message: "fix", CIStatus: plugins.CheckUnknown}, nil
}

func (DemoDeploy) Compare(_ context.Context, _ plugins.PluginContext, _ plugins.Credentials, base, head string) (plugins.CompareResult, error) {
	return plugins.CompareResult{BaseSHA: base, HeadSHA: head, Ahead: 1}, nil
}

func (DemoDeploy) TriggerDeployment(_ context.Context, _ plugins.PluginContext, _ plugins.Credentials, ref string, _ map[string]string) (plugins.DeploymentRun, error) {
	return plugins.DeploymentRun{RunID: "run-" + ref, Status: plugins.RunQueued}, nil
}

func (DemoDeploy) GetDeploymentStatus(_ context.Context, _ plugins.PluginContext, _ plugins.Credentials, id string) (plugins.DeploymentRun, error) {
	return plugins.DeploymentRun{RunID: id, Status: plugins.RunSuccess}, nil
}

// A deployment plugin. Optional capabilities it lacks (tags, releases, …)
// answer plugins.ErrNotImplemented through the package helpers, and the
// check status defaults to "unknown".
func ExampleDeploymentPlugin() {
	var p plugins.DeploymentPlugin = DemoDeploy{}
	ctx, pctx := context.Background(), plugins.PluginContext{ProjectID: "p1", ProjectSlug: "api", OrgSlug: "acme"}
	refs, _ := p.ListRefs(ctx, pctx, nil, plugins.RefListDefault, nil)
	run, _ := p.TriggerDeployment(ctx, pctx, nil, refs[0].SHA, nil)
	fmt.Println(refs[0].Name, run.RunID, run.Status)
	status, _ := plugins.GetCheckStatus(ctx, p, pctx, nil, "abc123")
	fmt.Println(status)
	_, err := plugins.CreateTag(ctx, p, pctx, nil, "abc123", "v1.0.0", "release")
	fmt.Println(errors.Is(err, plugins.ErrNotImplemented))
	// Output:
	// main run-abc123 queued
	// unknown
	// true
}
