package upstream

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/pubgate/pubgate/internal/testutil"
	"github.com/redis/go-redis/v9"
)

var globCases = []struct {
	pattern, str string
	want         bool
}{
	{"*", "anything", true},
	{"*", "", false}, // Redis: a lone '*' never meets an empty string
	{"a*", "a", true},
	{"h?llo", "hello", true},
	{"h?llo", "hllo", false},
	{"h*llo", "heeeello", true},
	{"h[ae]llo", "hallo", true},
	{"h[ae]llo", "hillo", false},
	{"h[^e]llo", "hallo", true},
	{"h[^e]llo", "hello", false},
	{"h[a-b]llo", "hbllo", true},
	{"h[b-a]llo", "hallo", true}, // reversed range
	{`h\*llo`, "h*llo", true},
	{`h\*llo`, "hello", false},
	{`[\]]`, "]", true},
	{"[abc", "c", true}, // unterminated set runs to the end
	{"[]", "a", false},
	{"a]", "a]", true},
	{`trailing\`, `trailing\`, true},
	{"acme:*", "acme:orders", true},
	{"acme:*", "globex:orders", false},
	{"**a", "ba", true},
	{"a*b*c", "aXbYc", true},
	{"a*b*c", "aXbYd", false},
}

func TestMatch(t *testing.T) {
	for _, c := range globCases {
		if got := Match(c.pattern, c.str); got != c.want {
			t.Errorf("Match(%q, %q) = %v, want %v", c.pattern, c.str, got, c.want)
		}
	}
}

// TestMatchAgreesWithRedis asks a real Redis which subscribed channels each
// pattern matches (PUBSUB CHANNELS uses the same matcher as PSUBSCRIBE).
func TestMatchAgreesWithRedis(t *testing.T) {
	srv := testutil.StartRedis(t)
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer c.Close()
	var channels []string
	for _, gc := range globCases {
		if gc.str != "" {
			channels = append(channels, gc.str)
		}
	}
	channels = append(channels, "a", "ab", "abc", "[", "]", `\`, "-", "^", "a-b")
	sub := c.Subscribe(ctx, channels...)
	defer sub.Close()
	testutil.Eventually(t, "subscriptions active", func() bool {
		n, _ := c.PubSubNumSub(ctx, channels[len(channels)-1]).Result()
		return n[channels[len(channels)-1]] == 1
	})
	patterns := []string{"[a-]", "[^a]", `[\-]`, "a[", "[a-", `\`, `\\`, "?", "??", "*?", "[]]", "[!a]", "*[", "a?c"}
	for _, gc := range globCases {
		patterns = append(patterns, gc.pattern)
	}
	for _, p := range patterns {
		got, err := c.PubSubChannels(ctx, p).Result()
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, ch := range channels {
			if Match(p, ch) && !slices.Contains(want, ch) {
				want = append(want, ch)
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("pattern %q: redis matches %q, Match matches %q", p, got, want)
		}
	}
}

func TestEscapeGlob(t *testing.T) {
	for _, s := range []string{"acme:", "a*b", "[x]", `back\slash`, "q?", ""} {
		e := EscapeGlob(s)
		if !Match(e, s) {
			t.Errorf("EscapeGlob(%q) = %q does not match itself", s, e)
		}
		if s != "" && Match(e, s+"x") {
			t.Errorf("EscapeGlob(%q) = %q matches a longer string", s, e)
		}
	}
}

func TestLiteralPrefix(t *testing.T) {
	for p, want := range map[string]string{"orders.*": "orders.", "*": "", "a?": "a", "a[b]": "a", `a\*`: "a*", `a\*b*`: "a*b", `x\`: "x", `\[a\]?`: "[a]", "a]b": "a]b", "plain": "plain"} {
		if got := LiteralPrefix(p); got != want {
			t.Errorf("LiteralPrefix(%q) = %q, want %q", p, got, want)
		}
	}
}

func FuzzMatch(f *testing.F) {
	for _, c := range globCases {
		f.Add(c.pattern, c.str)
	}
	f.Fuzz(func(t *testing.T, pattern, str string) {
		Match(pattern, str) // must not panic
		if !Match(EscapeGlob(str), str) {
			t.Fatalf("escaped %q does not match itself", str)
		}
		if lp := LiteralPrefix(pattern); Match(pattern, str) && !strings.HasPrefix(str, lp) {
			t.Fatalf("%q matches %q without its literal prefix %q", pattern, str, lp)
		}
	})
}
