package upstream

// Patterns is a set of glob patterns, each with a value, indexed by the
// pattern's literal prefix (LiteralPrefix): the patterns a channel matches
// are found with one map lookup per prefix of the channel's name, then a
// match of only the patterns whose literal prefix it has, instead of a
// match of every pattern. A thousand patterns of distinct prefixes cost a
// channel of 20 bytes 21 lookups and about one match. Not safe for
// concurrent use.
type Patterns[V any] struct {
	byPrefix map[string]map[string]V // literal prefix → pattern → value
	n        int
}

// Set adds pattern, or replaces its value.
func (p *Patterns[V]) Set(pattern string, v V) {
	if p.byPrefix == nil {
		p.byPrefix = make(map[string]map[string]V)
	}
	prefix := LiteralPrefix(pattern)
	set := p.byPrefix[prefix]
	if set == nil {
		set = make(map[string]V)
		p.byPrefix[prefix] = set
	}
	if _, ok := set[pattern]; !ok {
		p.n++
	}
	set[pattern] = v
}

// Delete removes pattern if it is there.
func (p *Patterns[V]) Delete(pattern string) {
	prefix := LiteralPrefix(pattern)
	set := p.byPrefix[prefix]
	if _, ok := set[pattern]; !ok {
		return
	}
	delete(set, pattern)
	p.n--
	if len(set) == 0 {
		delete(p.byPrefix, prefix)
	}
}

// Len is the number of patterns.
func (p *Patterns[V]) Len() int { return p.n }

// Matching calls fn for every pattern that matches channel (Match).
func (p *Patterns[V]) Matching(channel string, fn func(pattern string, v V)) {
	if p.n == 0 {
		return
	}
	for i := 0; i <= len(channel); i++ {
		for pattern, v := range p.byPrefix[channel[:i]] {
			if Match(pattern, channel) {
				fn(pattern, v)
			}
		}
	}
}

// All calls fn for every pattern.
func (p *Patterns[V]) All(fn func(pattern string, v V)) {
	for _, set := range p.byPrefix {
		for pattern, v := range set {
			fn(pattern, v)
		}
	}
}
