package httprequest

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRefusedAddresses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr  string
		class string // "" = allowed
	}{
		{"127.0.0.1", "loopback"},
		{"127.8.9.10", "loopback"},
		{"::1", "loopback"},
		{"::ffff:127.0.0.1", "loopback"},
		{"10.1.2.3", "private"},
		{"172.16.0.1", "private"},
		{"172.31.255.255", "private"},
		{"192.168.1.1", "private"},
		{"fc00::1", "private"},
		{"fd00:ec2::254", "private"}, // AWS metadata over IPv6
		{"169.254.169.254", "link-local"},
		{"169.254.0.1", "link-local"},
		{"fe80::1", "link-local"},
		{"100.64.0.1", "CGNAT"},
		{"100.100.100.200", "CGNAT"}, // Alibaba metadata
		{"0.0.0.0", "unspecified"},
		{"::", "unspecified"},
		{"0.1.2.3", "this-network"},
		{"224.0.0.1", "multicast"},
		{"239.1.1.1", "multicast"},
		{"ff02::1", "multicast"},
		{"ff01::1", "multicast"},
		{"255.255.255.255", "reserved"},
		{"240.0.0.1", "reserved"},
		{"192.0.0.192", "IETF protocol"},
		{"198.18.0.1", "benchmarking"},
		{"fec0::1", "site-local"},
		{"64:ff9b::a9fe:a9fe", "NAT64 link-local"}, // 169.254.169.254 via NAT64
		{"64:ff9b::7f00:1", "NAT64 loopback"},
		{"8.8.8.8", ""},
		{"93.184.216.34", ""},
		{"172.32.0.1", ""},
		{"100.128.0.1", ""},
		{"2606:4700:4700::1111", ""},
		{"64:ff9b::808:808", ""}, // 8.8.8.8 via NAT64
	}
	for _, tc := range tests {
		t.Run(tc.addr, func(t *testing.T) {
			t.Parallel()
			addr := netip.MustParseAddr(tc.addr)
			require.Equal(t, tc.class, refusedClass(addr))
			err := controlAddress("tcp", netip.AddrPortFrom(addr, 443).String(), nil)
			if tc.class == "" {
				require.NoError(t, err)
				return
			}
			var ae *AddressError
			require.ErrorAs(t, err, &ae)
			require.ErrorIs(t, err, ErrAddressRefused)
			require.Equal(t, addr.Unmap(), ae.Addr)
		})
	}
}

func TestExcerptRedactsAndBounds(t *testing.T) {
	t.Parallel()
	creds := map[string]string{"token": "tok-secret-1", "other": "pw-secret-2"}
	tests := map[string]struct {
		in      string
		want    string
		notWant []string
	}{
		"bearer echoed":    {in: "you sent Authorization: Bearer abc.DEF-123_x~y+z/=", want: "you sent Authorization: Bearer [redacted]"},
		"basic lower case": {in: "auth basic dXNlcjpwYXNz done", want: "auth basic [redacted] done"},
		"credential value": {in: `{"echo": "tok-secret-1", "p": "pw-secret-2"}`, want: `{"echo": "[redacted]", "p": "[redacted]"}`},
		"bearer of token":  {in: "Bearer tok-secret-1", want: "Bearer [redacted]"},
		"control chars":    {in: "a\x1b[31mred\x00\x07\r\nInjected: header\u2028x", want: "a[31mred Injected: headerx"},
		"invalid utf8":     {in: "ok \xff\xfe end", want: "ok \uFFFD end"},
		"whitespace runs":  {in: "  a \n\n\t b  ", want: "a b"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, excerpt([]byte(tc.in), creds))
		})
	}
	long := excerpt([]byte(strings.Repeat("é", 4000)), creds)
	require.LessOrEqual(t, len(long), maxErrorExcerpt)
	require.Equal(t, 512, maxErrorExcerpt)
	require.Contains(t, long, "…")
}

// The plugin's transport ignores HTTP(S)_PROXY: the address check must
// see the real destination.
func TestTransportHasNoProxy(t *testing.T) {
	t.Setenv("HTTP_PROXY", "http://proxy.example:3128")
	t.Setenv("HTTPS_PROXY", "http://proxy.example:3128")
	for _, allow := range []bool{false, true} {
		tr := newTransport(allow)
		require.Nil(t, tr.Proxy)
		require.NotNil(t, tr.DialContext)
	}
}
