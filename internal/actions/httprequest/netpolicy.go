package httprequest

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// ErrAddressRefused is matched (errors.Is) by an *AddressError.
var ErrAddressRefused = errors.New("http#request: destination address refused")

// AddressError is a connection the dialer refused after DNS resolution:
// the address is loopback, private, link-local, CGNAT, unspecified,
// multicast, reserved or a cloud metadata address, and the operator did not
// pass --http-allow-private. It is permanent: the same rule resolves to the
// same kind of address next time.
type AddressError struct {
	Addr  netip.Addr
	Class string
}

func (e *AddressError) Error() string {
	return fmt.Sprintf("destination %s is a %s address (refused; imbi-worker run --http-allow-private allows it)", e.Addr, e.Class)
}

// Is makes errors.Is(err, ErrAddressRefused) true.
func (e *AddressError) Is(t error) bool { return t == ErrAddressRefused }

// ErrRedirectRefused is matched (errors.Is) by a *RedirectError.
var ErrRedirectRefused = errors.New("http#request: redirect refused")

// RedirectError is a redirect the action did not follow: to another origin
// (scheme, host or port differ), or past maxRedirects.
type RedirectError struct {
	From, To string // origins (scheme://host:port), never a path or query
	Reason   string
}

func (e *RedirectError) Error() string {
	return fmt.Sprintf("redirect from %s to %s refused: %s", e.From, e.To, e.Reason)
}

// Is makes errors.Is(err, ErrRedirectRefused) true.
func (e *RedirectError) Is(t error) bool { return t == ErrRedirectRefused }

// maxRedirects bounds a same-origin redirect chain (follow_redirects).
const maxRedirects = 5

// Special-purpose ranges refused besides what netip's predicates cover.
var refusedPrefixes = []struct {
	prefix netip.Prefix
	class  string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "this-network"},
	{netip.MustParsePrefix("100.64.0.0/10"), "CGNAT"}, // also Alibaba's metadata 100.100.100.200
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"}, // 255.255.255.255 included
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
}

// nat64Prefixes embed an IPv4 address in their low 32 bits; that address
// is checked too.
var nat64Prefixes = []netip.Prefix{
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
}

// refusedClass returns why addr may not be dialled, or "" when it may.
// Cloud metadata addresses (169.254.169.254, fd00:ec2::254) fall under
// link-local and private (fc00::/7).
func refusedClass(addr netip.Addr) string {
	addr = addr.Unmap()
	for _, p := range nat64Prefixes {
		if p.Contains(addr) {
			b := addr.As16()
			if c := refusedClass(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})); c != "" {
				return "NAT64 " + c
			}
		}
	}
	switch {
	case !addr.IsValid():
		return "invalid"
	case addr.IsUnspecified():
		return "unspecified"
	case addr.IsLoopback():
		return "loopback"
	case addr.IsLinkLocalUnicast():
		return "link-local"
	case addr.IsPrivate():
		return "private"
	case addr.IsMulticast(), addr.IsLinkLocalMulticast(), addr.IsInterfaceLocalMulticast():
		return "multicast"
	}
	for _, r := range refusedPrefixes {
		if r.prefix.Contains(addr) {
			return r.class
		}
	}
	return ""
}

// controlAddress is the net.Dialer Control hook: it sees the address
// actually being connected to, after DNS resolution, so a name that
// resolves (or re-resolves) to a refused address cannot slip through.
func controlAddress(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("dial %q: %w", address, err)
	}
	if c := refusedClass(ap.Addr()); c != "" {
		return &AddressError{Addr: ap.Addr().Unmap(), Class: c}
	}
	return nil
}

// newTransport is the plugin's own transport: no proxy from the
// environment (the address check must see the real destination), and a
// dialer that refuses private addresses unless allowPrivate.
func newTransport(allowPrivate bool) *http.Transport {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		d.Control = controlAddress
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.DialContext = d.DialContext
	return tr
}

// origin is a URL's scheme://host:port with the default port spelled out
// and the host lower-cased: two URLs have the same origin when these are
// equal.
type origin struct{ scheme, host, port string }

func originOf(scheme, hostname, port string) origin {
	scheme = strings.ToLower(scheme)
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[scheme]
	}
	return origin{scheme: scheme, host: strings.ToLower(hostname), port: port}
}

func (o origin) String() string {
	return o.scheme + "://" + net.JoinHostPort(o.host, o.port)
}

// checkRedirect is the client's redirect policy for one request: none
// unless follow; with follow, same origin only (so Authorization never
// goes elsewhere and https never downgrades), at most maxRedirects.
func checkRedirect(follow bool) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if !follow {
			return http.ErrUseLastResponse
		}
		from := originOf(via[0].URL.Scheme, via[0].URL.Hostname(), via[0].URL.Port())
		to := originOf(req.URL.Scheme, req.URL.Hostname(), req.URL.Port())
		switch {
		case from != to:
			return &RedirectError{From: from.String(), To: to.String(), Reason: "another origin"}
		case req.URL.User != nil:
			return &RedirectError{From: from.String(), To: to.String(), Reason: "user info in the location"}
		case len(via) > maxRedirects:
			return &RedirectError{From: from.String(), To: to.String(), Reason: fmt.Sprintf("more than %d redirects", maxRedirects)}
		}
		return nil
	}
}
