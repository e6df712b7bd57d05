package audit

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// LoadKey reads the chain key from a file or from an environment variable
// (exactly one is named): its text, surrounding whitespace trimmed. The key
// never comes from the configuration itself, which is often shared.
func LoadKey(file, env string) ([]byte, error) {
	var key []byte
	switch {
	case file != "" && env != "":
		return nil, fmt.Errorf("audit: name the key's file or its environment variable, not both")
	case file != "":
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("audit: key: %w (create one with: pubgate audit keygen --out %s)", err, file)
		}
		key = bytes.TrimSpace(data)
	case env != "":
		key = bytes.TrimSpace([]byte(os.Getenv(env)))
		if len(key) == 0 {
			return nil, fmt.Errorf("audit: key: environment variable %s is empty or not set", env)
		}
	default:
		return nil, fmt.Errorf("audit: no key: set a key file or an environment variable")
	}
	if len(key) < MinKeyBytes {
		return nil, fmt.Errorf("audit: the key is %d bytes; at least %d are needed (pubgate audit keygen makes one)", len(key), MinKeyBytes)
	}
	return key, nil
}

// NewKey returns a fresh random key as text: 32 random bytes in hex.
func NewKey() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// WriteKeyFile writes a new key (NewKey) to path, readable by its owner only
// (0600). It never replaces a file: a key that is overwritten can no longer
// verify the logs chained under it. The key appears at path complete or not
// at all, so that two processes creating it at once agree on one key.
func WriteKeyFile(path string) error {
	key, err := NewKey()
	if err != nil {
		return fmt.Errorf("audit: new key: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".audit-key-*") // 0600
	if err != nil {
		return fmt.Errorf("audit: write key: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }() // after a successful rename there is nothing to remove
	if _, err = tmp.WriteString(key + "\n"); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp.Name(), path) // unlike rename, fails if path exists
	}
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("audit: %s already exists: pubgate never replaces a key (logs chained under it could no longer be verified)", path)
	}
	if err != nil {
		return fmt.Errorf("audit: write key: %w", err)
	}
	return nil
}

// LoadOrCreateKey loads the key at path, creating it first (WriteKeyFile,
// in a directory made 0700 if need be) when there is none. created says
// whether this call made it.
func LoadOrCreateKey(path string) (key []byte, created bool, err error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, false, fmt.Errorf("audit: key directory: %w", err)
		}
		switch err := WriteKeyFile(path); {
		case err == nil:
			created = true
		case !fileExists(path): // else another process made it first: use theirs
			return nil, false, err
		}
	}
	key, err = LoadKey(path, "")
	return key, created, err
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// KeyFileWarning says what is wrong with a key file that users other than
// its owner may read or write, naming the file and the fix; "" when nothing
// is (or the file cannot be checked: a missing file is LoadKey's error).
func KeyFileWarning(path string) string {
	if path == "" || runtime.GOOS == "windows" { // no Unix permission bits there
		return ""
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm()&0o077 == 0 {
		return ""
	}
	return fmt.Sprintf("the audit key file %s is accessible to group or others (mode %04o): whoever reads it can forge the log; run: chmod 600 %s",
		path, fi.Mode().Perm(), path)
}
