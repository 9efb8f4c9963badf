// Package builtin registers the plugins shipped with imbi-worker
// (gateway-actions, http). The shipped binary imports it; a custom binary
// imports it too when it wants the built-ins beside its own plugins:
//
//	import (
//		"github.com/aweber-imbi/imbi-worker/cli"
//		_ "github.com/aweber-imbi/imbi-worker/builtin"
//		_ "example.com/my/plugin"
//	)
//
// It exists because the built-in plugins live under internal/, which other
// modules cannot import.
package builtin

import (
	_ "github.com/aweber-imbi/imbi-worker/internal/actions"
)
