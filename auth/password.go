package auth

import (
	"context"
	"fmt"

	"golang.org/x/crypto/bcrypt"
)

// PasswordUser is one entry of the password table.
type PasswordUser struct {
	Tenant       string
	PasswordHash string // bcrypt
	Roles        []string
}

// Passwords authenticates users against bcrypt hashes.
type Passwords struct {
	users map[string]PasswordUser
	// decoy is compared against when the user is unknown, so that a wrong
	// user name costs the same time as a wrong password.
	decoy []byte
}

var _ Authenticator = (*Passwords)(nil)

// NewPasswords builds the table; every hash must be a valid bcrypt hash.
func NewPasswords(users map[string]PasswordUser) (*Passwords, error) {
	cost := bcrypt.DefaultCost
	for name, u := range users {
		c, err := bcrypt.Cost([]byte(u.PasswordHash))
		if err != nil {
			return nil, fmt.Errorf("auth: user %s: %w", name, err)
		}
		cost = max(cost, c)
	}
	decoy, err := bcrypt.GenerateFromPassword([]byte("pubgate decoy password"), cost)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	return &Passwords{users: users, decoy: decoy}, nil
}

// Authenticate compares the password with the user's bcrypt hash.
func (p *Passwords) Authenticate(_ context.Context, c Credentials) (Identity, error) {
	u, known := p.users[c.Username]
	hash := p.decoy
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
// password, for auth.default_user.
func (p *Passwords) Lookup(user string) (Identity, bool) {
	u, ok := p.users[user]
	if !ok {
		return Identity{}, false
	}
	return p.identity(user, u), true
}

func (p *Passwords) identity(name string, u PasswordUser) Identity {
	return Identity{Tenant: u.Tenant, User: name, Roles: append([]string(nil), u.Roles...), Method: "password"}
}
