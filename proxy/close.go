package proxy

// closeCause is why a session ended, by kind. A closeReason adds the
// detail the disconnect record and the log carry; the cause decides the
// record's forced flag and the pubgate_disconnects_total label.
type closeCause uint8

const (
	causeQuit               closeCause = iota // the client sent QUIT
	causeClientClosed                         // the client closed the connection
	causeConnectionError                      // the connection failed
	causeProtocolError                        // the client broke the protocol
	causeSlowConsumer                         // the output limits (limits.client_output_buffer)
	causeLoginTimeout                         // no AUTH within auth.login_timeout
	causeCredentialsExpired                   // the identity's token expired
	causeRevoked                              // the policy or the configuration no longer admits the identity
	causeKilled                               // CLIENT KILL
	causeUpstreamOutage                       // upstream.disconnect_clients_after
	causeShutdown                             // the node shuts down
	causeInternalError                        // a bug: the session panicked
	numCloseCauses
)

var closeCauseNames = [numCloseCauses]string{
	"quit", "client_closed", "connection_error", "protocol_error", "slow_consumer", "login_timeout",
	"credentials_expired", "revoked", "killed", "upstream_outage", "shutdown", "internal_error",
}

func (c closeCause) String() string { return closeCauseNames[c] }

// byPubgate reports whether pubgate, not the client or the network, ended
// the session: the disconnect record's forced.
func (c closeCause) byPubgate() bool { return c >= causeProtocolError }

// closeReason is why one session ended.
type closeReason struct {
	cause  closeCause
	detail string // for the disconnect record and the log
}

func closeFor(cause closeCause, detail string) closeReason {
	return closeReason{cause: cause, detail: detail}
}
