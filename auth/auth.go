// Package auth turns client credentials into an Identity bound to one tenant.
// Authenticators never see the proxy; the proxy sees only this package's
// small interface.
package auth

import (
	"context"
	"errors"
	"time"
)

// Method is how an identity was proven. Policies see it as
// input.auth.method, the audit log as auth_method.
type Method string

const (
	MethodPassword    Method = "password" // AUTH with a configured user's password
	MethodCertificate Method = "mtls"     // a verified client certificate
	MethodJWT         Method = "jwt"      // AUTH with a token
)

// Identity is who a connection acts as. Policies and the audit log see it.
type Identity struct {
	Tenant string
	User   string
	Roles  []string
	Method Method
	Claims map[string]any // verified token claims, if any
	// Expires is when the identity stops being valid (a token's exp);
	// zero for never.
	Expires time.Time
}

// Credentials is what a client presented with AUTH or HELLO … AUTH.
type Credentials struct {
	Username string
	Password string
}

// ErrInvalidCredentials is returned for an unknown user or a wrong secret,
// deliberately without saying which.
var ErrInvalidCredentials = errors.New("auth: invalid username-password pair or user is disabled")

// Authenticator checks credentials.
//
// Implementations return ErrInvalidCredentials (possibly wrapped) when the
// credentials are wrong, and another error when they could not be checked.
// They are safe for concurrent use.
type Authenticator interface {
	Authenticate(ctx context.Context, c Credentials) (Identity, error)
}

// Verifier is an Authenticator that may know credentials to be correct
// without checking them again (Passwords remembers verified passwords).
// A login it knows correct needs no turn at the failed-login throttle: it
// is no guess.
type Verifier interface {
	// Verified returns the identity of credentials known correct, without
	// the slow check; false says only that they are not known.
	Verified(c Credentials) (Identity, bool)
}
