package plugins_test

import (
	"context"
	"fmt"

	"github.com/aweber-imbi/imbi-worker/plugins"
)

// DemoIdentity is an identity plugin (plugin_type "identity"): an OAuth2
// code flow against an upstream identity provider.
type DemoIdentity struct{}

func (DemoIdentity) Manifest() plugins.PluginManifest {
	m := plugins.NewManifest("demo-sso", "Demo SSO", plugins.TypeIdentity)
	m.AuthType = plugins.AuthOIDC
	m.LoginCapable = true
	m.DefaultScopes = []string{"openid", "email"}
	return m
}

func (DemoIdentity) AuthorizationRequest(_ context.Context, _ plugins.PluginContext, creds plugins.Credentials, redirectURI string, _ []string) (plugins.AuthorizationRequest, error) {
	return plugins.AuthorizationRequest{
		AuthorizationURL: "https://sso.example/authorize?client_id=" + creds["client_id"] + "&redirect_uri=" + redirectURI,
		State:            "s1",
	}, nil
}

func (DemoIdentity) ExchangeCode(_ context.Context, _ plugins.PluginContext, _ plugins.Credentials, code, _ string, _ *string) (plugins.IdentityProfile, plugins.IdentityCredentials, error) {
	if code != "good" {
		return plugins.IdentityProfile{}, plugins.IdentityCredentials{}, &plugins.PluginAuthenticationFailed{Message: "code rejected"}
	}
	email := "dev@acme.example"
	return plugins.IdentityProfile{Subject: "u-1", Email: &email, EmailVerified: true},
		plugins.IdentityCredentials{AccessToken: "at-secret", TokenType: "Bearer"}, nil
}

func (DemoIdentity) Refresh(context.Context, plugins.PluginContext, plugins.Credentials, string) (plugins.IdentityCredentials, error) {
	return plugins.IdentityCredentials{AccessToken: "at-2", TokenType: "Bearer"}, nil
}

// An identity plugin. IdentityCredentials never print their tokens; the
// optional Revoke is a no-op when the plugin does not implement it.
func ExampleIdentityPlugin() {
	var p plugins.IdentityPlugin = DemoIdentity{}
	ctx, pctx := context.Background(), plugins.PluginContext{ProjectID: "p1", ProjectSlug: "api", OrgSlug: "acme"}
	req, _ := p.AuthorizationRequest(ctx, pctx, plugins.Credentials{"client_id": "c1"}, "https://imbi.example/cb", nil)
	fmt.Println(req.AuthorizationURL)
	profile, creds, _ := p.ExchangeCode(ctx, pctx, nil, "good", "https://imbi.example/cb", nil)
	fmt.Println(profile.Subject, *profile.Email, creds)
	_, _, err := p.ExchangeCode(ctx, pctx, nil, "bad", "https://imbi.example/cb", nil)
	fmt.Println(err)
	fmt.Println(plugins.Revoke(ctx, p, pctx, nil, "at-secret"))
	// Output:
	// https://sso.example/authorize?client_id=c1&redirect_uri=https://imbi.example/cb
	// u-1 dev@acme.example <IdentityCredentials redacted>
	// code rejected
	// <nil>
}
