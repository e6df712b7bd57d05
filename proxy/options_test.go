package proxy

import (
	"strings"
	"testing"

	"github.com/pubgate/pubgate/auth"
	"github.com/pubgate/pubgate/policy"
	"github.com/pubgate/pubgate/upstream"
)

// TestNewRefusesUnsetLimits: limits left at zero would refuse every
// client, so New says which are missing instead.
func TestNewRefusesUnsetLimits(t *testing.T) {
	pw, err := auth.NewPasswords(testUsers)
	if err != nil {
		t.Fatal(err)
	}
	o := Options{
		Tenants: testTenants, Broker: upstream.NewMemory(), Auth: pw,
		Authorizer: newTestAuthorizer(t, testTenants, NamespaceOptions{}, policy.Sources{Builtin: policy.Builtin}),
	}
	if _, err := New(o); err == nil || !strings.Contains(err.Error(), "MaxClients") {
		t.Fatalf("zero limits: %v", err)
	}
	o.Limits = testLimits()
	o.Limits.ClientOutputBuffer.SoftLimit = o.Limits.ClientOutputBuffer.HardLimit + 1
	if _, err := New(o); err == nil || !strings.Contains(err.Error(), "ClientOutputBuffer") {
		t.Fatalf("soft limit over the hard one: %v", err)
	}
	o.Limits = testLimits()
	if _, err := New(o); err != nil {
		t.Fatal(err)
	}
}
