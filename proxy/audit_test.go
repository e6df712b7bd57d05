package proxy

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/pubgate/pubgate/audit"
	"github.com/pubgate/pubgate/internal/testutil"
)

// recorder keeps the records a session hands to its Auditor, and refuses
// those that grant access while unavailable is set, as a fail-closed
// audit log that cannot write does.
type recorder struct {
	mu          sync.Mutex
	records     []audit.Record
	unavailable bool
}

func (r *recorder) Record(rec audit.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.unavailable && rec.Grants() {
		return audit.ErrUnavailable
	}
	r.records = append(r.records, rec)
	return nil
}

func (r *recorder) find(event audit.Event, outcome audit.Outcome) []audit.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []audit.Record
	for _, rec := range r.records {
		if rec.Event == event && (outcome == "" || rec.Outcome == outcome) {
			out = append(out, rec)
		}
	}
	return out
}

func (r *recorder) setUnavailable(v bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unavailable = v
}

func startAuditedProxy(t *testing.T, levels audit.Levels, q Quotas) (*testEnv, *recorder) {
	t.Helper()
	rec := &recorder{}
	env := startQuotaProxy(t, q, func(o *Options) { o.Audit, o.AuditLevels = rec, levels })
	return env, rec
}

func TestAuditedRefusalsNameTheirReason(t *testing.T) {
	env, rec := startAuditedProxy(t, audit.Levels{}, Quotas{MaxPayloadBytes: 4})
	alice := env.login(t, "alice")
	if r := alice.Do("PUBLISH", "orders", "too long"); !strings.HasPrefix(r, "-ERR pubgate: message of 8 bytes exceeds tenants.acme.quotas.max_payload_bytes") {
		t.Fatal(r)
	}
	if r := alice.Do("PUBLISH", "orders", "ok"); r != ":0" {
		t.Fatal(r)
	}
	denied := rec.find(audit.EventAuthz, audit.Deny)
	if len(denied) != 1 || denied[0].Reason != "message of 8 bytes exceeds tenants.acme.quotas.max_payload_bytes (4)" ||
		denied[0].User != "alice" || denied[0].Tenant != "acme" || denied[0].PayloadSize != 8 || denied[0].Payload != nil {
		t.Fatalf("denial records %+v", denied)
	}
	if allowed := rec.find(audit.EventAuthz, audit.Allow); len(allowed) != 0 {
		t.Fatalf("publishes are not recorded by default: %+v", allowed)
	}
}

// With the audit log unavailable (fail closed), what it would record is
// refused; what it would not record goes on.
func TestUnrecordableActionsAreRefused(t *testing.T) {
	levels := audit.Levels{Tenants: map[string]audit.Scope{"acme": {Actions: map[string]string{"publish": "metadata"}}}}
	env, rec := startAuditedProxy(t, levels, Quotas{})
	alice, bob := env.login(t, "alice"), env.login(t, "bob")
	rec.setUnavailable(true)
	if r := alice.Do("PUBLISH", "orders", "x"); r != "-"+errAudit {
		t.Fatalf("recorded PUBLISH: %s", r)
	}
	if r := bob.Do("PUBLISH", "orders", "x"); r != ":0" {
		t.Fatalf("unrecorded PUBLISH: %s", r)
	}
	if r := bob.Do("SUBSCRIBE", "a", "b"); r != "-"+errAudit {
		t.Fatalf("SUBSCRIBE: %s", r)
	}
	if r := testutil.DialRESP(t, env.addr).Do("AUTH", "alice", "alice-secret"); r != "-"+errAudit {
		t.Fatalf("AUTH: %s", r)
	}
	rec.setUnavailable(false)
	if r := bob.Do("SUBSCRIBE", "a"); r != `["subscribe" "a" :1]` {
		t.Fatalf("SUBSCRIBE after: %s", r)
	}
}

func TestShutdownIsAForcedDisconnect(t *testing.T) {
	env, rec := startAuditedProxy(t, audit.Levels{}, Quotas{})
	env.login(t, "alice")
	if err := env.srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	d := rec.find(audit.EventDisconnect, "")
	if len(d) != 1 || !d[0].Forced || d[0].Reason != "server shutting down" || d[0].User != "alice" {
		t.Fatalf("disconnect records %+v", d)
	}
}
