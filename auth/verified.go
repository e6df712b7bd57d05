package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"

	lru "github.com/hashicorp/golang-lru/v2"
)

// CredentialKeyer names credentials by a keyed hash, HMAC-SHA-256 under a
// key drawn at random when it is made and never written anywhere: equal
// credentials get equal names, and a name reveals nothing of the password
// to whoever does not hold the key (which lives only in this process's
// memory).
type CredentialKeyer struct{ key [32]byte }

// NewCredentialKeyer draws a fresh key (crypto/rand).
func NewCredentialKeyer() *CredentialKeyer {
	k := &CredentialKeyer{}
	_, _ = rand.Read(k.key[:]) // never fails (crypto/rand crashes the program instead)
	return k
}

// Sum is the keyed hash of (user, password). The user name is length
// prefixed, so that no two pairs are hashed as the same bytes.
func (k *CredentialKeyer) Sum(c Credentials) [sha256.Size]byte {
	m := hmac.New(sha256.New, k.key[:])
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(c.Username)))
	m.Write(n[:])
	m.Write([]byte(c.Username))
	m.Write([]byte(c.Password))
	var sum [sha256.Size]byte
	m.Sum(sum[:0])
	return sum
}

// verifiedCache remembers, per user, the keyed hash of the last password
// that bcrypt verified and the bcrypt hash it was verified against. A
// login whose keyed hash matches, while the user's hash is still that one,
// is known correct without another bcrypt check. It keeps no password and
// no failed login.
type verifiedCache struct {
	users *lru.Cache[string, verified] // by user name, least recently used dropped
}

type verified struct {
	sum  [sha256.Size]byte // CredentialKeyer.Sum of the verified credentials
	hash string            // the bcrypt hash they matched
}

// newVerifiedCache holds up to maxUsers users; nil (no cache) for 0.
func newVerifiedCache(maxUsers int) *verifiedCache {
	if maxUsers <= 0 {
		return nil
	}
	users, _ := lru.New[string, verified](maxUsers) // fails only for a size below 1
	return &verifiedCache{users: users}
}

// has tells whether sum was verified against hash, user's hash now.
func (c *verifiedCache) has(user string, sum [sha256.Size]byte, hash string) bool {
	if c == nil {
		return false
	}
	v, ok := c.users.Get(user)
	return ok && v.hash == hash && hmac.Equal(v.sum[:], sum[:])
}

// remember records credentials bcrypt has just verified against hash.
func (c *verifiedCache) remember(user string, sum [sha256.Size]byte, hash string) {
	if c != nil {
		c.users.Add(user, verified{sum: sum, hash: hash})
	}
}

// forgetChanged drops the users that users no longer has, or has with
// another hash: their remembered passwords must go through bcrypt again,
// and an old one fails.
func (c *verifiedCache) forgetChanged(users map[string]PasswordUser) {
	if c == nil {
		return
	}
	for _, name := range c.users.Keys() {
		v, ok := c.users.Peek(name)
		if u, known := users[name]; ok && (!known || u.PasswordHash != v.hash) {
			c.users.Remove(name)
		}
	}
}

func (c *verifiedCache) len() int {
	if c == nil {
		return 0
	}
	return c.users.Len()
}
