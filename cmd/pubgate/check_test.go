package main

import (
	"strings"
	"testing"
)

func TestCheckReportsEveryDecodeErrorByKey(t *testing.T) {
	bad := "listen: {plaintext: true}\ntenants:\n  acme: {}\nauth:\n  login_timeout: 10 seconds\nlimits:\n  max_clients: lots\nlog: {level: loud}\n"
	code, _, errOut := runCLI(t, "", "check", "--config", writeFile(t, bad))
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, errOut)
	}
	for _, want := range []string{
		`auth.login_timeout: "10 seconds" is not a duration (line 5): use Go syntax such as 10s or 1m30s`,
		`limits.max_clients: "lots" is not an integer (line 7)`,
		`log.level: must be debug, info, warn or error, not "loud"`,
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
}

func TestCheckWarnsOfAPrefixWithoutSeparator(t *testing.T) {
	cfg := "listen: {plaintext: true}\ntenants:\n  acme: {}\n  globex: {prefix: globex}\n"
	code, out, errOut := runCLI(t, "", "check", "--config", writeFile(t, cfg))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if want := `warning: tenants.globex.prefix: "globex" does not end in a separator`; !strings.Contains(out, want) || !strings.Contains(out, "is valid") {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
	if strings.Contains(out, "tenants.acme.prefix") {
		t.Errorf("warns of the default prefix:\n%s", out)
	}
}
