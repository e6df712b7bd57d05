package gateway

import (
	"crypto/tls"
	"fmt"
	"net"

	"github.com/pubgate/pubgate/config"
	"github.com/pubgate/pubgate/proxy"
	ptls "github.com/pubgate/pubgate/tls"
	"go.uber.org/zap"
)

// listen opens the client listener: TLS, with the certificate source it
// serves, unless plaintext was asked for.
func listen(l config.Listen, log *zap.Logger) (net.Listener, *ptls.Source, error) {
	ln, err := net.Listen("tcp", l.Address)
	if err != nil {
		return nil, nil, fmt.Errorf("listen: %w", err)
	}
	if l.ProxyProtocol.Enabled() {
		plain := ln
		if ln, err = proxy.ProxyProtocolListener(plain, proxyProtocol(l.ProxyProtocol)); err != nil {
			_ = plain.Close()
			return nil, nil, err
		}
		log.Info("client addresses from PROXY protocol headers", zap.Strings("trusted", l.ProxyProtocol.Trusted))
	}
	if l.Plaintext {
		log.Warn("serving without TLS (listen.plaintext: true): credentials and messages cross the network in clear")
		return ln, nil, nil
	}
	src, err := ptls.New(tlsOptions(l.TLS), log)
	if err != nil {
		_ = ln.Close()
		return nil, nil, err
	}
	if src.CAFile != "" {
		log.Info("TLS certificate from pubgate's local CA; clients must trust its certificate",
			zap.String("ca_file", src.CAFile), zap.String("example", "redis-cli --tls --cacert "+src.CAFile))
	}
	return &closingListener{Listener: tls.NewListener(ln, src.Config()), onClose: src.Close}, src, nil
}

// closingListener stops the certificate source with the listener.
type closingListener struct {
	net.Listener
	onClose func() error
}

func (l *closingListener) Close() error {
	err := l.Listener.Close()
	_ = l.onClose()
	return err
}
