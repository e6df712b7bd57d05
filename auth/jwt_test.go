package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

type signingKey struct {
	kid string
	key any // *rsa.PrivateKey or *ecdsa.PrivateKey
	alg jwt.SigningMethod
}

func newRSAKey(t *testing.T, kid string) signingKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{kid, k, jwt.SigningMethodRS256}
}

func newECKey(t *testing.T, kid string) signingKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{kid, k, jwt.SigningMethodES256}
}

func jwksJSON(t *testing.T, keys ...signingKey) []byte {
	t.Helper()
	set := jwkset.NewMemoryStorage()
	for _, k := range keys {
		var pub any
		switch priv := k.key.(type) {
		case *rsa.PrivateKey:
			pub = &priv.PublicKey
		case *ecdsa.PrivateKey:
			pub = &priv.PublicKey
		}
		jwk, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: k.kid, ALG: jwkset.ALG(k.alg.Alg())}})
		if err != nil {
			t.Fatal(err)
		}
		if err := set.KeyWrite(context.Background(), jwk); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := set.JSONPublic(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func sign(t *testing.T, k signingKey, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(k.alg, claims)
	tok.Header["kid"] = k.kid
	s, err := tok.SignedString(k.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func validClaims() jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"iss": "https://idp.example", "aud": "pubgate", "sub": "orders-svc", "tenant": "acme",
		"roles": []any{"publisher"}, "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
}

// jwksServer serves a key set over HTTPS on loopback; set replaces it.
type jwksServer struct {
	mu    sync.Mutex
	body  []byte
	fetch int
	srv   *httptest.Server
}

func newJWKSServer(t *testing.T, body []byte) *jwksServer {
	s := &jwksServer{body: body}
	s.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.fetch++
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(s.body)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *jwksServer) set(body []byte) {
	s.mu.Lock()
	s.body = body
	s.mu.Unlock()
}

func newTestJWT(t *testing.T, url string, client *http.Client) *JWT {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	j, err := NewJWT(ctx, JWTOptions{
		JWKSURL: url, HTTPClient: client, RefreshInterval: time.Hour, UnknownKIDInterval: time.Millisecond,
		Issuer: "https://idp.example", Audience: "pubgate", Algorithms: []string{"RS256", "ES256"},
		TenantClaim: "tenant", UserClaim: "sub", RolesClaim: "roles",
	})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func TestJWT(t *testing.T) {
	rsaKey, ecKey, rogue := newRSAKey(t, "rsa-1"), newECKey(t, "ec-1"), newRSAKey(t, "rsa-1")
	idp := newJWKSServer(t, jwksJSON(t, rsaKey, ecKey))
	j := newTestJWT(t, idp.srv.URL, idp.srv.Client())

	with := func(change func(jwt.MapClaims)) jwt.MapClaims {
		c := validClaims()
		change(c)
		return c
	}
	tampered := sign(t, rsaKey, validClaims())
	parts := strings.Split(tampered, ".")
	parts[1] = strings.TrimRight(parts[1], "=") + "x"
	unsigned := "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + strings.Split(sign(t, rsaKey, validClaims()), ".")[1] + "."
	pubDER, _ := x509.MarshalPKIXPublicKey(&rsaKey.key.(*rsa.PrivateKey).PublicKey)
	confused := jwt.NewWithClaims(jwt.SigningMethodHS256, validClaims())
	confused.Header["kid"] = "rsa-1"
	hs256, _ := confused.SignedString(pubDER)

	cases := []struct {
		name, user, token string
		ok                bool
	}{
		{"RS256", "orders-svc", sign(t, rsaKey, validClaims()), true},
		{"ES256", "orders-svc", sign(t, ecKey, validClaims()), true},
		{"AUTH with one argument", "default", sign(t, rsaKey, validClaims()), true},
		{"expired", "orders-svc", sign(t, rsaKey, with(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Minute).Unix() })), false},
		{"no expiry", "orders-svc", sign(t, rsaKey, with(func(c jwt.MapClaims) { delete(c, "exp") })), false},
		{"not yet valid", "orders-svc", sign(t, rsaKey, with(func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Hour).Unix() })), false},
		{"wrong issuer", "orders-svc", sign(t, rsaKey, with(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" })), false},
		{"wrong audience", "orders-svc", sign(t, rsaKey, with(func(c jwt.MapClaims) { c["aud"] = "other-app" })), false},
		{"no tenant claim", "orders-svc", sign(t, rsaKey, with(func(c jwt.MapClaims) { delete(c, "tenant") })), false},
		{"other user than the token's", "admin", sign(t, rsaKey, validClaims()), false},
		{"signed by an unknown key with a known kid", "orders-svc", sign(t, rogue, validClaims()), false},
		{"tampered payload", "orders-svc", strings.Join(parts, "."), false},
		{"alg none", "orders-svc", unsigned, false},
		{"HS256 with the public key as secret", "orders-svc", hs256, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id, err := j.Authenticate(context.Background(), Credentials{Username: c.user, Password: c.token})
			if !c.ok {
				if !errors.Is(err, ErrInvalidCredentials) {
					t.Fatalf("accepted (identity %+v, err %v)", id, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if id.Tenant != "acme" || id.User != "orders-svc" || id.Method != "jwt" || len(id.Roles) != 1 || id.Roles[0] != "publisher" {
				t.Fatalf("identity %+v", id)
			}
			if time.Until(id.Expires) < 59*time.Minute {
				t.Fatalf("expiry %v not taken from the token", id.Expires)
			}
		})
	}
}

// TestJWTKeyRotation: a token signed by a key the provider published after
// pubgate fetched the set is accepted once the unknown kid triggers a fetch.
func TestJWTKeyRotation(t *testing.T) {
	oldKey, newKey := newRSAKey(t, "2025"), newRSAKey(t, "2026")
	idp := newJWKSServer(t, jwksJSON(t, oldKey))
	j := newTestJWT(t, idp.srv.URL, idp.srv.Client())
	if _, err := j.Authenticate(context.Background(), Credentials{Username: "orders-svc", Password: sign(t, oldKey, validClaims())}); err != nil {
		t.Fatal(err)
	}
	idp.set(jwksJSON(t, oldKey, newKey))
	if _, err := j.Authenticate(context.Background(), Credentials{Username: "orders-svc", Password: sign(t, newKey, validClaims())}); err != nil {
		t.Fatalf("token with the new key: %v", err)
	}
}

func TestJWTFromFileAndChain(t *testing.T) {
	key := newECKey(t, "file-1")
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, jwksJSON(t, key), 0o600); err != nil {
		t.Fatal(err)
	}
	j, err := NewJWT(context.Background(), JWTOptions{
		JWKSFile: path, Issuer: "https://idp.example", Audience: "pubgate", Algorithms: []string{"ES256"},
		TenantClaim: "tenant", UserClaim: "sub", RolesClaim: "roles",
	})
	if err != nil {
		t.Fatal(err)
	}
	pw, err := NewPasswords(map[string]PasswordUser{"alice": {Tenant: "acme", PasswordHash: aliceHash}})
	if err != nil {
		t.Fatal(err)
	}
	chain := Chain{Passwords: pw, JWT: j}
	if id, err := chain.Authenticate(context.Background(), Credentials{Username: "orders-svc", Password: sign(t, key, validClaims())}); err != nil || id.Method != "jwt" {
		t.Fatalf("token through the chain: %+v, %v", id, err)
	}
	if id, err := chain.Authenticate(context.Background(), Credentials{Username: "alice", Password: "alice-secret"}); err != nil || id.Method != "password" {
		t.Fatalf("password through the chain: %+v, %v", id, err)
	}
	for _, s := range []string{"alice-secret", "a.b.c", "e30.e30.e30"} {
		if LooksLikeJWT(s) {
			t.Errorf("%q taken for a JWT", s)
		}
	}
}
