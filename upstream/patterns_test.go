package upstream

import (
	"slices"
	"strconv"
	"testing"
)

// TestPatternsFindWhatAScanFinds: for every channel, the index yields
// exactly the patterns a match of every pattern would, escapes, brackets
// and empty literal prefixes included.
func TestPatternsFindWhatAScanFinds(t *testing.T) {
	patterns := []string{"*", "a*", "acme:*", "acme:o*", "acme:orders", "acme:ord?rs", "acme:[op]rders", "acme\\:x*",
		"acme:\\*lit", "?cme:*", "[a]cme:*", "globex:*", "acme:orders*", "acme:orders\\", "", "acme:*:c"}
	channels := []string{"", "a", "acme:orders", "acme:prders", "acme:x1", "acme:*lit", "globex:1", "acme:bench:1:c", "acme:orders\\"}
	var p Patterns[int]
	for i, pat := range patterns {
		p.Set(pat, i)
	}
	p.Set("globex:*", 99) // replaces the value, not a second pattern
	p.Set("gone*", 0)
	p.Delete("gone*")
	p.Delete("never added")
	if p.Len() != len(patterns) {
		t.Fatalf("Len = %d, want %d", p.Len(), len(patterns))
	}
	for _, ch := range channels {
		var want, got []string
		for _, pat := range patterns {
			if Match(pat, ch) {
				want = append(want, pat)
			}
		}
		p.Matching(ch, func(pat string, _ int) { got = append(got, pat) })
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%q: index found %q, a scan %q", ch, got, want)
		}
	}
}

func FuzzPatternsAgreeWithMatch(f *testing.F) {
	f.Add("acme:o*", "acme:orders")
	f.Add("a\\*b*", "a*bc")
	f.Fuzz(func(t *testing.T, pattern, channel string) {
		var p Patterns[struct{}]
		p.Set(pattern, struct{}{})
		found := false
		p.Matching(channel, func(string, struct{}) { found = true })
		if found != Match(pattern, channel) {
			t.Fatalf("index says %v, Match says %v for %q on %q", found, !found, pattern, channel)
		}
	})
}

func BenchmarkPatternsMatching(b *testing.B) {
	var p Patterns[int]
	for i := range 1000 {
		p.Set("acme:bench:"+strconv.Itoa(i)+":*", i)
	}
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		p.Matching("acme:bench:517:c", func(string, int) { n++ })
		if n != 1 {
			b.Fatal(n)
		}
	}
}
