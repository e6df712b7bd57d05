package admin

import (
	"errors"
	"strings"
	"time"
)

// Ready reports why pubgate should not be sent new clients, or nil: it is
// draining (shutting down), the upstream engine is down, or the audit log
// cannot be written while audit.fail_closed refuses what it cannot record.
// The error is one line naming every reason.
func (s Sources) Ready() error {
	var reasons []string
	if s.Draining != nil && s.Draining() {
		reasons = append(reasons, "draining: pubgate is shutting down")
	}
	if s.Upstream != nil {
		if h := s.Upstream(); !h.Up {
			r := "upstream down"
			if !h.Since.IsZero() {
				r += " since " + h.Since.UTC().Format(time.RFC3339)
			}
			if h.Err != nil {
				r += ": " + h.Err.Error()
			}
			reasons = append(reasons, r)
		}
	}
	if s.Audit != nil && s.AuditFailClosed && s.Audit().Failing {
		reasons = append(reasons, "audit log failing: audit.fail_closed refuses new logins, subscriptions and recorded publishes until it can write")
	}
	if len(reasons) == 0 {
		return nil
	}
	return errors.New(strings.Join(strings.Fields(strings.Join(reasons, "; ")), " "))
}
