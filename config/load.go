package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Load reads, decodes and validates a configuration file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := parse(data, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	return c, nil
}

// usersFile is the schema of users_file.
type usersFile struct {
	Users map[string]*User `yaml:"users"`
}

// loadUsersFile merges users_file into c.Users; a user defined in both is an
// error.
func (c *Config) loadUsersFile(dir string) error {
	if c.UsersFile == "" {
		return nil
	}
	path := relativeTo(dir, c.UsersFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("users_file: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("users_file %s: %w", path, err)
	}
	var f usersFile
	if len(doc.Content) > 0 {
		if err := checkKeys(doc.Content[0], reflect.TypeOf(f), ""); err != nil {
			return fmt.Errorf("users_file %s: %w", path, err)
		}
		if err := doc.Content[0].Decode(&f); err != nil {
			return fmt.Errorf("users_file %s: %w", path, err)
		}
	}
	if c.Users == nil {
		c.Users = make(map[string]*User, len(f.Users))
	}
	for name, u := range f.Users {
		if _, dup := c.Users[name]; dup {
			return fmt.Errorf("users_file %s: users.%s: also defined in the configuration file", path, name)
		}
		c.Users[name] = u
	}
	return nil
}

// Parse decodes a YAML document over the defaults and validates the result.
// Every error names its key and line, whether the key is unknown
// ("limits.max_clinets: unknown key (line 4)") or its value of the wrong type
// ("auth.login_timeout: \"10 seconds\" is not a duration (line 14): …"); all
// of them are reported together, with the validation errors of the sections
// that decoded cleanly. A relative users_file is read from the working
// directory.
func Parse(data []byte) (*Config, error) { return parse(data, ".") }

func parse(data []byte, dir string) (*Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	c := Default()
	var ch checker
	if len(doc.Content) > 0 {
		ch.check(doc.Content[0], reflect.TypeOf(c).Elem(), "")
		// What the checker left decodes; an error here is one it does not
		// foresee, reported as yaml words it.
		if err := doc.Content[0].Decode(c); err != nil {
			return nil, errors.Join(append(ch.errs, err)...)
		}
	}
	if err := c.loadUsersFile(dir); err != nil {
		return nil, errors.Join(append(ch.errs, err)...)
	}
	c.Policy.resolvePaths(dir)
	c.Audit.resolvePaths(dir)
	c.fillDerivedDefaults()
	errs := ch.errs
	if err := c.Validate(); err != nil {
		errs = append(errs, ch.unrelated(err)...)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// removedKeys are keys of earlier releases, with what to do instead: like
// any unknown key they are errors, but ones that say so.
var removedKeys = map[string]string{
	"auth.throttle.lockout": "the throttle no longer locks a client out, it delays each further login; " +
		"remove lockout and set auth.throttle.max_delay (default 2s) instead",
}

// checkKeys reports every unknown key and every value of the wrong type
// under n, which decodes into t; see checker.
func checkKeys(n *yaml.Node, t reflect.Type, path string) error {
	var ch checker
	ch.check(n, t, path)
	return errors.Join(ch.errs...)
}

// checker walks a YAML node beside the Go type it decodes into. It reports
// every key the type does not have and every value the type cannot hold by
// its full dotted path and line, so that one run of check shows every such
// mistake in the file (yaml's decoder stops at the first, and names a line
// but not the key). It removes what it reports from the tree (a bad mapping
// or list becomes an empty one), so that the rest decodes and validates.
type checker struct {
	errs []error
	bad  []string // paths of the reported keys
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

func (ch *checker) fail(path, format string, args ...any) {
	ch.errs = append(ch.errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	ch.bad = append(ch.bad, path)
}

// check reports false when n holds a value t cannot, and the caller must
// drop it.
func (ch *checker) check(n *yaml.Node, t reflect.Type, path string) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return true
	}
	if n.Kind == yaml.AliasNode || reflect.PointerTo(t).Implements(unmarshalerType) {
		return ch.checkLeaf(n, t, path)
	}
	switch t.Kind() {
	case reflect.Struct:
		if !ch.wantKind(n, yaml.MappingNode, path) {
			return true
		}
		fields := yamlFields(t)
		kept := n.Content[:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			k := join(path, key.Value)
			ft, ok := fields[key.Value]
			switch {
			case !ok:
				if hint, removed := removedKeys[k]; removed {
					ch.fail(k, "no longer supported (line %d): %s", key.Line, hint)
				} else {
					ch.fail(k, "unknown key (line %d)", key.Line)
				}
			case ch.check(val, ft, k):
				kept = append(kept, key, val)
			}
		}
		n.Content = kept
	case reflect.Map:
		if !ch.wantKind(n, yaml.MappingNode, path) {
			return true
		}
		kept := n.Content[:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			if ch.check(val, t.Elem(), join(path, key.Value)) {
				kept = append(kept, key, val)
			}
		}
		n.Content = kept
	case reflect.Slice, reflect.Array:
		if !ch.wantKind(n, yaml.SequenceNode, path) {
			return true
		}
		kept := n.Content[:0]
		for i, e := range n.Content {
			if ch.check(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i)) {
				kept = append(kept, e)
			}
		}
		n.Content = kept
	default:
		return ch.checkLeaf(n, t, path)
	}
	return true
}

// wantKind reports whether n is a mapping or list as t needs; if not, it
// reports the key and empties n.
func (ch *checker) wantKind(n *yaml.Node, kind yaml.Kind, path string) bool {
	if n.Kind == kind {
		return true
	}
	what, tag := "a mapping of keys", "!!map"
	if kind == yaml.SequenceNode {
		what, tag = "a list", "!!seq"
	}
	if path == "" {
		ch.fail("configuration", "must be %s, not %s (line %d)", what, describe(n), n.Line)
	} else {
		ch.fail(path, "must be %s, not %s (line %d)", what, describe(n), n.Line)
	}
	*n = yaml.Node{Kind: kind, Tag: tag, Line: n.Line, Column: n.Column}
	return false
}

// checkLeaf decodes n into a value of t and words a failure for a person.
func (ch *checker) checkLeaf(n *yaml.Node, t reflect.Type, path string) bool {
	err := n.Decode(reflect.New(t).Interface())
	if err == nil {
		return true
	}
	v := describe(n)
	switch {
	case t == reflect.TypeFor[time.Duration]():
		ch.fail(path, "%s is not a duration (line %d): use Go syntax such as 10s or 1m30s", v, n.Line)
	case t == reflect.TypeFor[ByteSize]():
		ch.fail(path, "%s is not a size (line %d): use bytes or units such as 64KiB or 32MiB", v, n.Line)
	case t.Kind() == reflect.Bool:
		ch.fail(path, "%s is not a boolean (line %d): use true or false", v, n.Line)
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		ch.fail(path, "%s is not an integer (line %d): use digits, such as 100", v, n.Line)
	case t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uintptr:
		ch.fail(path, "%s is not a non-negative integer (line %d): use digits, such as 100", v, n.Line)
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		ch.fail(path, "%s is not a number (line %d)", v, n.Line)
	case t.Kind() == reflect.String:
		ch.fail(path, "must be a single value, not %s (line %d)", v, n.Line)
	default:
		var te *yaml.TypeError
		if errors.As(err, &te) && len(te.Errors) > 0 {
			err = errors.New(strings.Join(te.Errors, "; "))
		}
		ch.fail(path, "%s is not valid here (line %d): %v", v, n.Line, err)
	}
	return false
}

// describe shows a value in an error: a scalar quoted, else its kind.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "*" + n.Value
	}
	return strconv.Quote(n.Value)
}

// unrelated returns the errors of Validate that cannot stem from a value
// the checker dropped: those of other top-level sections that do not name
// a dropped key. A dropped value leaves its default in place, which may be
// wrong beside the rest of its section ("must be less than
// auth.login_timeout" when login_timeout was "10 seconds").
func (ch *checker) unrelated(err error) []error {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	if len(ch.bad) == 0 {
		return errs
	}
	sections := make(map[string]bool, len(ch.bad))
	for _, p := range ch.bad {
		sections[section(p)] = true
	}
	var kept []error
	for _, e := range errs {
		msg := e.Error()
		key, _, _ := strings.Cut(msg, ": ")
		if sections[section(key)] || slices.ContainsFunc(ch.bad, func(p string) bool { return strings.Contains(msg, p) }) {
			continue
		}
		kept = append(kept, e)
	}
	return kept
}

// section is the top-level key of a dotted path: "tenants" of
// "tenants.acme.prefix", "policy" of "policy.paths[0]".
func section(path string) string {
	if i := strings.IndexAny(path, ".["); i >= 0 {
		return path[:i]
	}
	return path
}

func yamlFields(t reflect.Type) map[string]reflect.Type {
	fields := make(map[string]reflect.Type, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if name != "-" {
			fields[name] = f.Type
		}
	}
	return fields
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// relativeTo resolves a path in the configuration file against its directory.
func relativeTo(dir, path string) string {
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(dir, path)
}

// resolvePaths makes the policy's paths relative to the configuration file,
// as users_file is.
func (p *Policy) resolvePaths(dir string) {
	for i, path := range p.Paths {
		p.Paths[i] = relativeTo(dir, path)
	}
	p.Bundle = relativeTo(dir, p.Bundle)
}
