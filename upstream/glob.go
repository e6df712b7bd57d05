package upstream

import "strings"

// Match reports whether str matches the Redis glob pattern, with the exact
// semantics of Redis's stringmatchlen (util.c): '*', '?', '[...]' with '^'
// negation and 'a-z' ranges, and '\' escapes. The memory engine and the hub's
// receiver counting must agree with Redis, so this is a faithful port rather
// than path.Match, which differs on escapes, ranges and unterminated brackets.
func Match(pattern, str string) bool {
	skipLonger := false
	return matchGlob(pattern, str, &skipLonger, 0)
}

// maxGlobNesting mirrors Redis's protection against abusive patterns.
const maxGlobNesting = 1000

func matchGlob(p, s string, skipLonger *bool, nesting int) bool {
	if nesting > maxGlobNesting {
		return false
	}
	for len(p) > 0 && len(s) > 0 {
		switch p[0] {
		case '*':
			for len(p) > 1 && p[1] == '*' {
				p = p[1:]
			}
			if len(p) == 1 {
				return true
			}
			for len(s) > 0 {
				if matchGlob(p[1:], s, skipLonger, nesting+1) {
					return true
				}
				if *skipLonger {
					return false
				}
				s = s[1:]
			}
			// No suffix of s matches the rest of the pattern, so no earlier
			// '*' can succeed by consuming more: stop the whole search.
			*skipLonger = true
			return false
		case '?':
			p = p[1:]
		case '[':
			var ok bool
			if p, ok = matchBracket(p[1:], s[0]); !ok {
				return false
			}
		case '\\':
			if len(p) >= 2 {
				p = p[1:]
			}
			fallthrough
		default:
			if p[0] != s[0] {
				return false
			}
			p = p[1:]
		}
		s = s[1:]
		if len(s) == 0 {
			for len(p) > 0 && p[0] == '*' {
				p = p[1:]
			}
		}
	}
	return len(p) == 0 && len(s) == 0
}

// matchBracket matches c against the set that starts right after '[' and
// returns the pattern after the set. An unterminated set runs to the end of
// the pattern, as in Redis.
func matchBracket(p string, c byte) (rest string, ok bool) {
	negate := len(p) > 0 && p[0] == '^'
	if negate {
		p = p[1:]
	}
	match := false
	for len(p) > 0 && p[0] != ']' {
		switch {
		case len(p) >= 2 && p[0] == '\\':
			p = p[1:]
			match = match || p[0] == c
		case len(p) >= 3 && p[1] == '-':
			lo, hi := p[0], p[2]
			if lo > hi {
				lo, hi = hi, lo
			}
			match = match || (c >= lo && c <= hi)
			p = p[2:]
		default:
			match = match || p[0] == c
		}
		p = p[1:]
	}
	if len(p) > 0 {
		p = p[1:] // the closing ']'
	}
	return p, match != negate
}

// EscapeGlob returns s with every glob metacharacter escaped, so that the
// result, used as a pattern, matches exactly s and nothing else.
func EscapeGlob(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if isGlobMeta(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	b := make([]byte, 0, len(s)+n)
	for i := 0; i < len(s); i++ {
		if isGlobMeta(s[i]) {
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return string(b)
}

// LiteralPrefix returns the text every channel the pattern matches starts
// with: the pattern up to its first unescaped '*', '?' or '[', backslash
// escapes resolved. A lone trailing backslash ends it too.
func LiteralPrefix(pattern string) string {
	var b strings.Builder
	for i := 0; i < len(pattern); i++ {
		switch c := pattern[i]; c {
		case '*', '?', '[':
			return b.String()
		case '\\':
			if i+1 == len(pattern) {
				return b.String()
			}
			i++
			b.WriteByte(pattern[i])
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isGlobMeta(c byte) bool {
	return c == '*' || c == '?' || c == '[' || c == ']' || c == '\\'
}
