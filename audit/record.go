// Package audit is pubgate's tamper-evident audit log: security events as
// JSON lines, each chained to the one before by an HMAC-SHA256, written off
// the hot path to a rotating file or stdout, and read back by Verify and
// Query. docs/audit.md is the reference for the record schema.
package audit

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"time"
	"unicode/utf8"

	"go.uber.org/zap/zapcore"
)

// Event names what a record is about.
type Event string

// The event types. Every one but authz-allow is always recorded.
const (
	EventConnect      Event = "connect"       // a client connected (after TLS), or its handshake failed
	EventAuth         Event = "auth"          // a login: AUTH, HELLO AUTH, a client certificate, the default user
	EventAuthz        Event = "authz"         // a subscribe or publish decision (and its quota checks)
	EventRevoke       Event = "revoke"        // a subscription or connection the policy no longer allows
	EventDisconnect   Event = "disconnect"    // a connection ended; forced says whether pubgate ended it
	EventPolicyReload Event = "policy_reload" // a policy reload, applied or refused
	EventConfigReload Event = "config_reload" // a configuration reload (SIGHUP), applied or refused
	EventAuditStart   Event = "audit_start"   // pubgate opened the audit log
	EventFileStart    Event = "file_start"    // first record of a file; prev names the previous file's last hash
	EventSeal         Event = "seal"          // periodic, before rotation and at shutdown: no record follows unseen
)

// Outcome is what happened.
type Outcome string

// The outcomes.
const (
	Allow   Outcome = "allow"
	Deny    Outcome = "deny"
	Success Outcome = "success"
	Failure Outcome = "failure"
)

// Record is one audit event as the proxy reports it. Seq, prev and hash
// are added by the Logger, which owns the chain. User, ClientName and
// Channel are given as the client sent them, whatever the bytes: the
// encoders keep them exact (see putName, and appendName for the log itself).
type Record struct {
	Time    time.Time
	Event   Event
	Outcome Outcome

	Tenant, User, AuthMethod string

	ClientID               int64
	ClientAddr, ClientName string
	TLSVersion, TLSSubject string // connect records of TLS connections

	Action, Channel string
	Reason          string
	Revision        string // the policy revision that decided
	Forced          bool   // disconnect: pubgate ended the connection

	// Level says what of the payload the record carries: None (the zero
	// value) for records that are not about a publish.
	Level       Level
	PayloadSize int
	Digest      [sha256.Size]byte // at PayloadDigest and above
	Payload     []byte            // at Payload; a copy the record owns
}

// Grants reports whether the record admits the client to something: a
// fail-closed log must refuse those it cannot write.
func (r *Record) Grants() bool {
	return r.Outcome == Allow || (r.Event == EventAuth && r.Outcome == Success)
}

// SetPayload records what the level asks of a payload; p may be reused by
// the caller afterwards.
func (r *Record) SetPayload(level Level, p []byte) {
	r.Level, r.PayloadSize = level, len(p)
	if level >= PayloadDigest {
		r.Digest = sha256.Sum256(p)
	}
	if level >= Payload {
		r.Payload = append([]byte(nil), p...)
	}
}

// MarshalLogObject writes the record's own fields, in schema order, leaving
// out empty ones.
func (r *Record) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	putString(enc, "outcome", string(r.Outcome))
	putString(enc, "tenant", r.Tenant)
	putName(enc, "user", "user_b64", r.User)
	putString(enc, "auth_method", r.AuthMethod)
	if r.ClientID != 0 || r.ClientAddr != "" {
		_ = enc.AddObject("client", clientFields{r})
	}
	putString(enc, "action", r.Action)
	putName(enc, "channel", "channel_b64", r.Channel)
	putString(enc, "reason", r.Reason)
	putString(enc, "policy_revision", r.Revision)
	if r.Forced {
		enc.AddBool("forced", true)
	}
	if r.Level >= Metadata {
		enc.AddInt("payload_size", r.PayloadSize)
	}
	if r.Level >= PayloadDigest {
		enc.AddString("payload_sha256", hex.EncodeToString(r.Digest[:]))
	}
	if r.Level >= Payload {
		enc.AddString("payload_base64", base64.StdEncoding.EncodeToString(r.Payload))
	}
	return nil
}

type clientFields struct{ r *Record }

func (c clientFields) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	if c.r.ClientID != 0 {
		enc.AddInt64("id", c.r.ClientID)
	}
	putString(enc, "addr", c.r.ClientAddr)
	putName(enc, "name", "name_b64", c.r.ClientName)
	putString(enc, "tls_version", c.r.TLSVersion)
	putString(enc, "tls_subject", c.r.TLSSubject)
	return nil
}

func putString(enc zapcore.ObjectEncoder, key, value string) {
	if value != "" {
		enc.AddString(key, value)
	}
}

// putName writes a name the client chose (a channel, a user, a client
// name), which Redis lets be any bytes. A JSON string is UTF-8, so the
// encoder writes each byte that is not as U+FFFD, and distinct names could
// read the same: for those names, and only those, the exact bytes follow
// under keyB64, in standard base64. A valid name costs one scan and reads
// exactly as it always has. Every record is encoded here, so no caller has
// to think about it.
func putName(enc zapcore.ObjectEncoder, key, keyB64, value string) {
	if value == "" {
		return
	}
	enc.AddString(key, value)
	if !utf8.ValidString(value) {
		enc.AddString(keyB64, base64.StdEncoding.EncodeToString([]byte(value)))
	}
}
