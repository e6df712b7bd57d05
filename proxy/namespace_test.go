package proxy

import (
	"strings"
	"testing"

	"github.com/pubgate/pubgate/upstream"
)

func TestNamespaceRewrite(t *testing.T) {
	acme := NewNamespace("acme", "acme:", "")
	odd := NewNamespace("odd", `t[1]*\?:`, "")
	cases := []struct {
		ns            *Namespace
		kind          upstream.Kind
		client, wantU string
	}{
		{acme, upstream.KindChannel, "orders", "acme:orders"},
		{acme, upstream.KindShard, "orders", "acme:orders"},
		{acme, upstream.KindChannel, "*", "acme:*"}, // a channel named "*" is just a name
		{acme, upstream.KindPattern, "*", "acme:*"},
		{acme, upstream.KindPattern, "orders.*", "acme:orders.*"},
		{acme, upstream.KindPattern, "[a-z]*", "acme:[a-z]*"},
		{odd, upstream.KindChannel, "x", `t[1]*\?:x`},
		{odd, upstream.KindPattern, "*", `t\[1\]\*\\\?:*`},
	}
	for _, c := range cases {
		if got := c.ns.Upstream(c.kind, c.client); got != c.wantU {
			t.Errorf("%s %v %q → %q, want %q", c.ns.Tenant, c.kind, c.client, got, c.wantU)
		}
	}
}

// TestHostilePatternsStayInTenant: whatever pattern globex sends, the
// upstream pattern matches none of acme's channels, while globex's own
// channels still match as they would on Redis.
func TestHostilePatternsStayInTenant(t *testing.T) {
	globex := NewNamespace("globex", "globex:", "")
	odd := NewNamespace("odd", `o*[`, "")
	acmeChannels := []string{"acme:orders", "acme:*", "acme:", "globex", "globe:x", "globex-x", "o*[", "o*x"}
	hostile := []string{"*", "acme:*", "[a-z]*", "*orders*", "?*", "\\*", "[^g]*", "*:*", "..", "[", "\\", "globex*"}
	for _, ns := range []*Namespace{globex, odd} {
		for _, p := range hostile {
			up := ns.Pattern(p)
			for _, ch := range acmeChannels {
				if upstream.Match(up, ch) && !strings.HasPrefix(ch, ns.Prefix) {
					t.Errorf("tenant %s pattern %q (upstream %q) matches foreign channel %q", ns.Tenant, p, up, ch)
				}
			}
		}
	}
	if !upstream.Match(globex.Pattern("[a-z]*"), "globex:orders") {
		t.Error("globex's own [a-z]* no longer matches its channel")
	}
	if !upstream.Match(odd.Pattern("x*"), "o*[xyz") || upstream.Match(odd.Pattern("*"), "o*x") {
		t.Error("escaped prefix does not behave literally")
	}
}

// FuzzNamespaceConfinement: for any prefix, pattern and channel, the
// tenant's upstream pattern matches only channels under its prefix (or the
// shared prefix, when it does not overlap the tenant's), and on those it
// agrees with the client's pattern on the unprefixed name.
func FuzzNamespaceConfinement(f *testing.F) {
	f.Add("acme:", "*", "acme:orders", "")
	f.Add("acme:", "[a-z]*", "globex:x", "")
	f.Add(`a[*`, `\`, `a[*\`, "")
	f.Add("p", "[^", "px", "")
	f.Add("acme:", "shared:*", "shared:news", "shared:")
	f.Add("acme:", `shared\:*`, "shared:news", "shared:")
	f.Add("acme:", "share*", "shared:news", "shared:")
	f.Fuzz(func(t *testing.T, prefix, pattern, channel, shared string) {
		if shared != "" && (strings.HasPrefix(prefix, shared) || strings.HasPrefix(shared, prefix)) {
			return // configuration refuses overlapping prefixes
		}
		ns := NewNamespace("t", prefix, shared)
		if !upstream.Match(ns.Pattern(pattern), channel) {
			return
		}
		rest, ok := ns.Strip(channel)
		if !ok {
			t.Fatalf("prefix %q pattern %q matches foreign channel %q", prefix, pattern, channel)
		}
		// Redis's '*' does not match an empty string, but after a literal
		// prefix it does; everything else must agree.
		if rest != "" && !upstream.Match(pattern, rest) {
			t.Fatalf("prefix %q: upstream matches %q but client pattern %q does not match %q", prefix, channel, pattern, rest)
		}
	})
}

// TestStripBytesAllocatesNothing: fan-out strips the tenant prefix of every
// message read from the engine; the name is a part of the read buffer.
func TestStripBytesAllocatesNothing(t *testing.T) {
	ns := NewNamespace("acme", "acme:", "shared:")
	channel := []byte("acme:orders-for-a-long-channel-name-over-32-bytes")
	if allocs := testing.AllocsPerRun(100, func() {
		if name, ok := ns.StripBytes(channel); !ok || len(name) != len(channel)-len("acme:") {
			t.Fatal("not stripped")
		}
	}); allocs != 0 {
		t.Errorf("%.0f allocations per strip", allocs)
	}
}
