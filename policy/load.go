package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/loader"
)

// Sources says where a policy comes from.
type Sources struct {
	// Paths are .rego modules and .json/.yaml data files, or directories
	// of them (recursively; a data file's directory is its path in data).
	Paths []string
	// Bundle is an OPA bundle: a directory or a .tar.gz built by
	// `opa build`.
	Bundle string
	// Data is pubgate's own document, visible to policies as data.pubgate
	// (tenants, users, namespace). Loaded files must not write under it.
	Data map[string]any
	// Builtin is the module used when neither Paths nor Bundle is set. A
	// configured policy that turns out empty is an error, never replaced.
	Builtin string
}

// loaded is the raw material of one revision.
type loaded struct {
	modules  map[string]*ast.Module
	raw      map[string][]byte
	data     map[string]any
	revision string
	bundle   string // the bundle manifest's own revision, if any
}

// load reads every source. It fails on unreadable or unparsable files and
// on data that would hide pubgate's own.
func load(src Sources) (*loaded, error) {
	l := &loaded{modules: map[string]*ast.Module{}, raw: map[string][]byte{}, data: map[string]any{}}
	if len(src.Paths) > 0 {
		res, err := loader.NewFileLoader().WithRegoVersion(ast.RegoV1).Filtered(src.Paths, skipTests)
		if err != nil {
			return nil, fmt.Errorf("policy: %w", err)
		}
		for _, m := range res.Modules {
			l.modules[m.Name], l.raw[m.Name] = m.Parsed, m.Raw
		}
		l.data = res.Documents
	}
	if src.Bundle != "" {
		if err := l.addBundle(src.Bundle); err != nil {
			return nil, err
		}
	}
	if len(src.Paths) == 0 && src.Bundle == "" && src.Builtin != "" {
		m, err := ast.ParseModuleWithOpts("builtin.rego", src.Builtin, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			return nil, fmt.Errorf("policy: built-in policy: %w", err)
		}
		l.modules["builtin.rego"], l.raw["builtin.rego"] = m, []byte(src.Builtin)
	}
	if _, taken := l.data["pubgate"]; taken {
		return nil, errors.New("policy: data files must not define the key \"pubgate\": data.pubgate is pubgate's own (tenants, users, namespace from the config)")
	}
	if src.Data != nil {
		l.data["pubgate"] = src.Data
	}
	rev, err := l.hash()
	if err != nil {
		return nil, err
	}
	l.revision = rev
	return l, nil
}

// skipTests leaves out the Rego unit tests (*_test.rego) found in a
// directory of policy.paths: they are for `pubgate policy test`, not for
// deciding requests, and editing one should not reload the policy. A test
// file named in policy.paths itself is loaded, as asked. (A bundle is
// served as built: `opa build --ignore '*_test.rego'` leaves them out.)
func skipTests(_ string, info fs.FileInfo, depth int) bool {
	return depth > 0 && !info.IsDir() && strings.HasSuffix(info.Name(), "_test.rego")
}

func (l *loaded) addBundle(path string) error {
	b, err := loader.NewFileLoader().WithRegoVersion(ast.RegoV1).AsBundle(path)
	if err != nil {
		return fmt.Errorf("policy: load bundle %s: %w", path, err)
	}
	for _, m := range b.Modules {
		name := "bundle:" + m.Path
		l.modules[name], l.raw[name] = m.Parsed, m.Raw
	}
	for k, v := range b.Data {
		if _, dup := l.data[k]; dup {
			return fmt.Errorf("policy: bundle %s: data key %q is also defined by policy.paths", path, k)
		}
		l.data[k] = v
	}
	l.bundle = b.Manifest.Revision
	return nil
}

// hash names the revision: a digest of every module and of the data, so
// that a reload that changes nothing keeps the revision (and its cache).
func (l *loaded) hash() (string, error) {
	h := sha256.New()
	for _, n := range slices.Sorted(maps.Keys(l.raw)) {
		fmt.Fprintf(h, "%d:%s\n%d:", len(n), n, len(l.raw[n]))
		h.Write(l.raw[n])
	}
	data, err := json.Marshal(l.data) // maps marshal with sorted keys
	if err != nil {
		return "", fmt.Errorf("policy: data: %w", err)
	}
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

// declaresAuthz reports whether some module is in package pubgate.authz.
func (l *loaded) declaresAuthz() bool {
	for _, m := range l.modules {
		if m.Package.Path.Equal(authzPackage) {
			return true
		}
	}
	return false
}

// files lists the module names, for logs.
func (l *loaded) files() string {
	return strings.Join(slices.Sorted(maps.Keys(l.modules)), ", ")
}
