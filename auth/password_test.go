package auth

import (
	"context"
	"errors"
	"testing"
)

const aliceHash = "$2a$04$kgPboL45J2J/V0s/3IbxXOQLOzAP1.yhtoWFpVWOR4gnrF79My9lG" // alice-secret

func TestPasswords(t *testing.T) {
	p, err := NewPasswords(map[string]PasswordUser{
		"alice": {Tenant: "acme", PasswordHash: aliceHash, Roles: []string{"publisher"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		user, pass string
		ok         bool
	}{
		{"alice", "alice-secret", true},
		{"alice", "wrong", false},
		{"alice", "", false},
		{"mallory", "alice-secret", false},
		{"", "", false},
	}
	for _, c := range cases {
		id, err := p.Authenticate(context.Background(), Credentials{Username: c.user, Password: c.pass})
		if c.ok {
			if err != nil || id.Tenant != "acme" || id.User != "alice" || id.Method != "password" || id.Roles[0] != "publisher" {
				t.Errorf("%s/%s: identity %+v, err %v", c.user, c.pass, id, err)
			}
		} else if !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("%s/%s: err = %v, want ErrInvalidCredentials", c.user, c.pass, err)
		}
	}
	if id, ok := p.Lookup("alice"); !ok || id.Tenant != "acme" {
		t.Errorf("Lookup(alice) = %+v, %v", id, ok)
	}
	if _, ok := p.Lookup("nobody"); ok {
		t.Error("Lookup(nobody) succeeded")
	}
}

func TestNewPasswordsRejectsBadHash(t *testing.T) {
	if _, err := NewPasswords(map[string]PasswordUser{"u": {PasswordHash: "plain"}}); err == nil {
		t.Fatal("accepted a non-bcrypt hash")
	}
}

// TestPasswordsUpdate: a new table applies to the next login; a table with
// a broken hash is refused and the old one stays.
func TestPasswordsUpdate(t *testing.T) {
	p, err := NewPasswords(map[string]PasswordUser{"alice": {Tenant: "acme", PasswordHash: aliceHash}})
	if err != nil {
		t.Fatal(err)
	}
	login := func(user string) error {
		_, err := p.Authenticate(context.Background(), Credentials{Username: user, Password: "alice-secret"})
		return err
	}
	if err := p.Update(map[string]PasswordUser{"carol": {Tenant: "acme", PasswordHash: aliceHash}}); err != nil {
		t.Fatal(err)
	}
	if login("alice") == nil || login("carol") != nil {
		t.Fatalf("after Update: alice %v, carol %v", login("alice"), login("carol"))
	}
	if err := p.Update(map[string]PasswordUser{"dave": {PasswordHash: "plain"}}); err == nil {
		t.Fatal("Update accepted a non-bcrypt hash")
	}
	if login("carol") != nil {
		t.Fatal("a refused Update replaced the table")
	}
}
