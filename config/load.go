package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"

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
// Unknown keys are errors naming the key, e.g. "limits.max_clinets: unknown
// key (line 4)". A relative users_file is read from the working directory.
func Parse(data []byte) (*Config, error) { return parse(data, ".") }

func parse(data []byte, dir string) (*Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	c := Default()
	if len(doc.Content) > 0 {
		if err := checkKeys(doc.Content[0], reflect.TypeOf(c).Elem(), ""); err != nil {
			return nil, err
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
	}
	if err := c.loadUsersFile(dir); err != nil {
		return nil, err
	}
	c.Policy.resolvePaths(dir)
	c.Audit.resolvePaths(dir)
	c.fillDerivedDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// removedKeys are keys of earlier releases, with what to do instead: like
// any unknown key they are errors, but ones that say so.
var removedKeys = map[string]string{
	"auth.throttle.lockout": "the throttle no longer locks a client out, it delays each further login; " +
		"remove lockout and set auth.throttle.max_delay (default 2s) instead",
}

// checkKeys walks a YAML node beside the Go type it decodes into and reports
// every key the type does not have, by its full dotted path.
func checkKeys(n *yaml.Node, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind != yaml.MappingNode {
		return nil // scalar and type mismatches are reported by the decoder
	}
	var errs []error
	switch t.Kind() {
	case reflect.Map:
		for i := 0; i+1 < len(n.Content); i += 2 {
			errs = append(errs, checkKeys(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value)))
		}
	case reflect.Struct:
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			ft, ok := fields[key.Value]
			if !ok {
				k := join(path, key.Value)
				if hint, removed := removedKeys[k]; removed {
					errs = append(errs, fmt.Errorf("%s: no longer supported (line %d): %s", k, key.Line, hint))
				} else {
					errs = append(errs, fmt.Errorf("%s: unknown key (line %d)", k, key.Line))
				}
				continue
			}
			errs = append(errs, checkKeys(val, ft, join(path, key.Value)))
		}
	}
	return errors.Join(errs...)
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
