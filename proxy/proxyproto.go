package proxy

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"net"

	"github.com/pires/go-proxyproto"
)

// ProxyProtocolListener wraps the client listener's TCP listener (under
// TLS, which pubgate still terminates) so that load balancers in p.Trusted
// tell each client's address in a PROXY protocol header, v1 or v2. A
// trusted peer must send one; any other peer that sends one is refused, so
// that no client can claim an address. The header is read by the
// session's goroutine (peerAddress), never by the accept loop.
func ProxyProtocolListener(ln net.Listener, p ProxyProtocolOptions) (net.Listener, error) {
	policy, err := proxyproto.PolicyFromRanges(p.Trusted, proxyproto.REQUIRE, proxyproto.REJECT)
	if err != nil {
		return nil, fmt.Errorf("listen.proxy_protocol.trusted: %w", err)
	}
	return &proxyproto.Listener{Listener: ln, ConnPolicy: policy, ReadHeaderTimeout: cmp.Or(p.HeaderTimeout, DefaultProxyHeaderTimeout)}, nil
}

// peerAddress is the client's address: the one its PROXY protocol header
// names where the listener takes one (waiting for the header at most the
// listener's header timeout), else the socket peer's. An error says why a
// header was missing or refused.
func peerAddress(conn net.Conn) (string, error) {
	if pc, ok := netConn(conn).(*proxyproto.Conn); ok {
		// An empty read consumes nothing: it processes the header and
		// returns the error of a missing or refused one.
		if _, err := pc.Read(nil); err != nil {
			return "", proxyHeaderError(err)
		}
	}
	return conn.RemoteAddr().String(), nil
}

func proxyHeaderError(err error) error {
	switch {
	case errors.Is(err, proxyproto.ErrSuperfluousProxyHeader):
		return errors.New("PROXY protocol header from an address not in listen.proxy_protocol.trusted")
	case errors.Is(err, proxyproto.ErrNoProxyProtocol):
		return errors.New("no PROXY protocol header from a trusted load balancer (listen.proxy_protocol.trusted)")
	}
	return fmt.Errorf("PROXY protocol header: %w", err)
}

// socketAddr is the address of the connection's socket peer (a load
// balancer's, behind one), known without reading from the connection.
func socketAddr(conn net.Conn) net.Addr { return socketConn(netConn(conn)).RemoteAddr() }

// socketConn is the connection under a PROXY protocol reader, if any.
func socketConn(conn net.Conn) net.Conn {
	if pc, ok := conn.(*proxyproto.Conn); ok {
		return pc.Raw()
	}
	return conn
}

// netConn is the connection under TLS, if any.
func netConn(conn net.Conn) net.Conn {
	if tc, ok := conn.(*tls.Conn); ok {
		return tc.NetConn()
	}
	return conn
}
