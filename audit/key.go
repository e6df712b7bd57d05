package audit

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
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
			return nil, fmt.Errorf("audit: key: %w (create one with: pubgate audit keygen > %s)", err, file)
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
