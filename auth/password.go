package auth

import (
	"context"
	"fmt"
	"sync/atomic"

	"golang.org/x/crypto/bcrypt"
)

// PasswordUser is one entry of the password table.
type PasswordUser struct {
	Tenant       string
	PasswordHash string // bcrypt
	Roles        []string
}

// Passwords authenticates users against bcrypt hashes. Update replaces the
// table while it is in use.
type Passwords struct {
	table atomic.Pointer[passwordTable]
}

type passwordTable struct {
	users map[string]PasswordUser
	// decoy is compared against when the user is unknown, so that a wrong
	// user name costs the same time as a wrong password.
	decoy []byte
}

var _ Authenticator = (*Passwords)(nil)

// NewPasswords builds the table; every hash must be a valid bcrypt hash.
func NewPasswords(users map[string]PasswordUser) (*Passwords, error) {
	p := &Passwords{}
	if err := p.Update(users); err != nil {
		return nil, err
	}
	return p, nil
}

// Update replaces the table for the logins that follow; on error (a hash
// that is not bcrypt) the table in effect stays.
func (p *Passwords) Update(users map[string]PasswordUser) error {
	cost := bcrypt.DefaultCost
	for name, u := range users {
		c, err := bcrypt.Cost([]byte(u.PasswordHash))
		if err != nil {
			return fmt.Errorf("auth: user %s: %w", name, err)
		}
		cost = max(cost, c)
	}
	decoy, err := bcrypt.GenerateFromPassword([]byte("pubgate decoy password"), cost)
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	p.table.Store(&passwordTable{users: users, decoy: decoy})
	return nil
}

// Authenticate compares the password with the user's bcrypt hash.
func (p *Passwords) Authenticate(_ context.Context, c Credentials) (Identity, error) {
	t := p.table.Load()
	u, known := t.users[c.Username]
	hash := t.decoy
	if known {
		hash = []byte(u.PasswordHash)
	}
	match := bcrypt.CompareHashAndPassword(hash, []byte(c.Password)) == nil
	if !known || !match {
		return Identity{}, ErrInvalidCredentials
	}
	return p.identity(c.Username, u), nil
}

// Lookup returns the identity of a configured user without checking a
// password, for auth.default_user and for identities that a new
// configuration changes.
func (p *Passwords) Lookup(user string) (Identity, bool) {
	u, ok := p.table.Load().users[user]
	if !ok {
		return Identity{}, false
	}
	return p.identity(user, u), true
}

func (p *Passwords) identity(name string, u PasswordUser) Identity {
	return Identity{Tenant: u.Tenant, User: name, Roles: append([]string(nil), u.Roles...), Method: "password"}
}
