package cli

import (
	"github.com/spf13/pflag"

	"github.com/aweber-imbi/imbi-worker/internal/pluginreg"
	"github.com/aweber-imbi/imbi-worker/plugins"
)

// httpFlags configure the built-in http#request action (run).
type httpFlags struct {
	allowPrivate bool
}

func (f *httpFlags) addFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&f.allowPrivate, "http-allow-private", false,
		"let http#request connect to loopback, private, link-local, CGNAT and cloud metadata addresses (demos, tests, internal endpoints); refused by default")
}

// privateNetworkPlugin is a plugin whose outbound requests refuse private
// addresses unless the operator allows them (the built-in http plugin).
type privateNetworkPlugin interface {
	WithAllowPrivate(allow bool) plugins.Plugin
}

// registrations is source (nil: pluginreg.All) with the
// operator's allowance applied to every plugin that honours it, as each
// is loaded.
func (f *httpFlags) registrations(source func() []pluginreg.Registration) func() []pluginreg.Registration {
	if source == nil {
		source = pluginreg.All
	}
	if !f.allowPrivate {
		return source
	}
	return func() []pluginreg.Registration {
		regs := source()
		for i, r := range regs {
			load := r.Load
			regs[i].Load = func() (any, error) {
				v, err := load()
				if p, ok := v.(privateNetworkPlugin); ok && err == nil {
					return p.WithAllowPrivate(true), nil
				}
				return v, err
			}
		}
		return regs
	}
}
