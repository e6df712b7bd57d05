package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// JWTOptions configures JWT identities.
type JWTOptions struct {
	JWKSURL  string // HTTPS URL of the identity provider's key set, or
	JWKSFile string // a key set on disk
	// HTTPClient fetches JWKSURL (default http.DefaultClient).
	HTTPClient *http.Client
	// RefreshInterval re-fetches the key set; a token whose kid is unknown
	// triggers a fetch too, at most once per UnknownKIDInterval.
	RefreshInterval    time.Duration
	UnknownKIDInterval time.Duration

	Issuer     string
	Audience   string
	Algorithms []string      // accepted "alg" values; "none" never is
	Leeway     time.Duration // clock skew allowed on exp, nbf, iat

	TenantClaim, UserClaim, RolesClaim string
}

// JWT authenticates `AUTH <user> <token>`: the token's signature (from the
// key set), issuer, audience, expiry and not-before are checked, and the
// claims name the tenant, user and roles.
type JWT struct {
	o      JWTOptions
	keys   keyfunc.Keyfunc
	parser *jwt.Parser
}

var _ Authenticator = (*JWT)(nil)

// NewJWT loads or starts fetching the key set. ctx ends the background
// refresh.
func NewJWT(ctx context.Context, o JWTOptions) (*JWT, error) {
	keys, err := keySet(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("auth: jwks: %w", err)
	}
	parser := jwt.NewParser(
		jwt.WithValidMethods(o.Algorithms),
		jwt.WithIssuer(o.Issuer),
		jwt.WithAudience(o.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(o.Leeway),
	)
	return &JWT{o: o, keys: keys, parser: parser}, nil
}

func keySet(ctx context.Context, o JWTOptions) (keyfunc.Keyfunc, error) {
	if o.JWKSFile != "" {
		raw, err := os.ReadFile(o.JWKSFile)
		if err != nil {
			return nil, err
		}
		return keyfunc.NewJWKSetJSON(raw)
	}
	// keyfunc's defaults start even while the provider is down (tokens
	// fail until it is back); refresh errors are not logged through slog.
	return keyfunc.NewDefaultOverrideCtx(ctx, []string{o.JWKSURL}, keyfunc.Override{
		Client: o.HTTPClient, RefreshInterval: o.RefreshInterval, RateLimitWaitMax: time.Second,
		RefreshUnknownKID:       rate.NewLimiter(rate.Every(o.UnknownKIDInterval), 1),
		RefreshErrorHandlerFunc: func(string) func(context.Context, error) { return func(context.Context, error) {} },
	})
}

// Authenticate verifies the token in c.Password. The user name given with
// AUTH must be the token's user, or "default" (AUTH with one argument).
func (j *JWT) Authenticate(ctx context.Context, c Credentials) (Identity, error) {
	claims := jwt.MapClaims{}
	if _, err := j.parser.ParseWithClaims(c.Password, claims, j.keys.KeyfuncCtx(ctx)); err != nil {
		// Keys that could not be had (the provider unreachable) say nothing
		// about the client's token: not WRONGPASS, and no throttling.
		if errors.Is(err, jwt.ErrTokenUnverifiable) && !errors.Is(err, jwkset.ErrKeyNotFound) {
			return Identity{}, fmt.Errorf("auth: jwt keys unavailable: %w", err)
		}
		return Identity{}, fmt.Errorf("%w: token: %v", ErrInvalidCredentials, err)
	}
	tenant, _ := claims[j.o.TenantClaim].(string)
	user, _ := claims[j.o.UserClaim].(string)
	if tenant == "" || user == "" {
		return Identity{}, fmt.Errorf("%w: token lacks the %q or %q claim", ErrInvalidCredentials, j.o.TenantClaim, j.o.UserClaim)
	}
	if c.Username != user && c.Username != "default" {
		return Identity{}, fmt.Errorf("%w: AUTH user %q is not the token's user %q", ErrInvalidCredentials, c.Username, user)
	}
	exp, _ := claims.GetExpirationTime()
	return Identity{Tenant: tenant, User: user, Roles: stringList(claims[j.o.RolesClaim]), Method: MethodJWT,
		Claims: claims, Expires: exp.Time}, nil
}

func stringList(v any) []string {
	switch v := v.(type) {
	case string:
		return strings.Fields(v) // an OAuth-style "scope" string
	case []any:
		var out []string
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// LooksLikeJWT tells a compact JWS from a password: three base64url parts
// whose header is JSON naming an "alg".
func LooksLikeJWT(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return false
	}
	header, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return false
	}
	var h struct {
		Alg string `json:"alg"`
	}
	return json.Unmarshal(header, &h) == nil && h.Alg != ""
}

// Chain sends tokens to the JWT authenticator and everything else to the
// password table.
type Chain struct {
	Passwords Authenticator
	JWT       Authenticator // nil: tokens are treated as passwords
}

// Verified asks the password authenticator whether it knows the
// credentials correct already (Verifier); tokens are never remembered.
func (c Chain) Verified(cr Credentials) (Identity, bool) {
	if c.JWT != nil && LooksLikeJWT(cr.Password) {
		return Identity{}, false
	}
	v, ok := c.Passwords.(Verifier)
	if !ok {
		return Identity{}, false
	}
	return v.Verified(cr)
}

func (c Chain) Authenticate(ctx context.Context, cr Credentials) (Identity, error) {
	if c.JWT != nil && LooksLikeJWT(cr.Password) {
		return c.JWT.Authenticate(ctx, cr)
	}
	if c.Passwords == nil {
		return Identity{}, fmt.Errorf("%w: no password users", ErrInvalidCredentials)
	}
	return c.Passwords.Authenticate(ctx, cr)
}
