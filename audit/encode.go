package audit

import (
	"encoding/base64"
	"strconv"
	"time"
	"unicode/utf8"
)

// The writer encodes records itself rather than through zap's JSON
// encoder, which cost more than half of a record's CPU (escaping through
// an interface per field, a pooled buffer, a copy). The bytes are zap's,
// exactly: a record's line, hash included, is what it was when zap wrote
// it (TestEncoderMatchesZap compares the two on generated records, and
// TestValidNamesEncodeAsBefore pins lines written by zap). Record's
// MarshalLogObject remains, for the operational log.

// encoder appends records as JSON. It caches what repeats from record to
// record: the formatted second of the last timestamp (records arrive in
// bursts within one second), and the members naming who and which
// connection, by connection (a connection's records name the same).
type encoder struct {
	sec    int64 // Unix second of secBuf, valid when secLen > 0
	secBuf [32]byte
	secLen int
	ids    [64]encodedIdentity // by client id
}

// identity is the members of a record that a connection's records share.
type identity struct {
	tenant, user, authMethod           string
	clientID                           int64
	addr, name, tlsVersion, tlsSubject string
}

type encodedIdentity struct {
	id      identity
	encoded []byte // nil: unused
}

// appendIdentity appends the members from tenant to client, as the last
// record with the same ones had them if it can.
func (e *encoder) appendIdentity(dst []byte, r *Record) []byte {
	id := identity{r.Tenant, r.User, r.AuthMethod, r.ClientID, r.ClientAddr, r.ClientName, r.TLSVersion, r.TLSSubject}
	cached := &e.ids[uint64(r.ClientID)%uint64(len(e.ids))]
	if cached.encoded != nil && cached.id == id {
		return append(dst, cached.encoded...)
	}
	start := len(dst)
	dst = appendString(dst, `,"tenant":"`, r.Tenant)
	dst = appendName(dst, `,"user":"`, `,"user_b64":"`, r.User)
	dst = appendString(dst, `,"auth_method":"`, r.AuthMethod)
	if r.ClientID != 0 || r.ClientAddr != "" {
		dst = append(dst, `,"client":{`...)
		n := len(dst)
		if r.ClientID != 0 {
			dst = append(dst, `"id":`...)
			dst = strconv.AppendInt(dst, r.ClientID, 10)
		}
		dst = appendString(dst, `,"addr":"`, r.ClientAddr)
		dst = appendName(dst, `,"name":"`, `,"name_b64":"`, r.ClientName)
		dst = appendString(dst, `,"tls_version":"`, r.TLSVersion)
		dst = appendString(dst, `,"tls_subject":"`, r.TLSSubject)
		if len(dst) > n && dst[n] == ',' { // no id: the first member has no comma
			dst = append(dst[:n], dst[n+1:]...)
		}
		dst = append(dst, '}')
	}
	if r.ClientID != 0 { // records without a connection are the log's own, and few
		cached.id, cached.encoded = id, append(cached.encoded[:0], dst[start:]...)
	}
	return dst
}

// appendRecord appends the canonical JSON of r, numbered seq and naming
// prev: the line up to, without, its hash member.
func (e *encoder) appendRecord(dst []byte, r *Record, seq uint64, prev []byte) []byte {
	dst = append(dst, '{')
	if !r.Time.IsZero() {
		dst = append(dst, `"ts":"`...)
		dst = e.appendTime(dst, r.Time)
		dst = append(dst, `","event":"`...)
	} else {
		dst = append(dst, `"event":"`...)
	}
	dst = appendJSONString(dst, string(r.Event))
	dst = append(dst, `","seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = appendString(dst, `,"outcome":"`, string(r.Outcome))
	dst = e.appendIdentity(dst, r)
	dst = appendString(dst, `,"action":"`, r.Action)
	dst = appendName(dst, `,"channel":"`, `,"channel_b64":"`, r.Channel)
	dst = appendString(dst, `,"reason":"`, r.Reason)
	dst = appendString(dst, `,"policy_revision":"`, r.Revision)
	if r.Forced {
		dst = append(dst, `,"forced":true`...)
	}
	if r.Level >= Metadata {
		dst = append(dst, `,"payload_size":`...)
		dst = strconv.AppendInt(dst, int64(r.PayloadSize), 10)
	}
	if r.Level >= PayloadDigest {
		dst = append(dst, `,"payload_sha256":"`...)
		dst = appendHex(dst, r.Digest[:])
		dst = append(dst, '"')
	}
	if r.Level >= Payload {
		dst = append(dst, `,"payload_base64":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, r.Payload)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"prev":"`...)
	dst = append(dst, prev...)
	return append(dst, `"}`...)
}

// appendTime appends t in UTC as time.RFC3339Nano formats it, reusing the
// date and time of day of the last second formatted.
func (e *encoder) appendTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	sec := t.Unix()
	if e.secLen == 0 || sec != e.sec {
		if y := t.Year(); y < 0 || y > 9999 {
			e.secLen = 0
			return t.AppendFormat(dst, time.RFC3339Nano) // not the width cached below
		}
		b := t.AppendFormat(e.secBuf[:0], "2006-01-02T15:04:05")
		e.sec, e.secLen = sec, len(b)
	}
	dst = append(dst, e.secBuf[:e.secLen]...)
	if ns := uint32(t.Nanosecond()); ns != 0 {
		// RFC3339Nano's ".999999999": trailing zeros dropped.
		frac := [10]byte{'.'}
		for i := 9; i > 1; i -= 2 {
			d := ns % 100
			ns /= 100
			frac[i], frac[i-1] = digits2[2*d+1], digits2[2*d]
		}
		frac[1] = byte('0' + ns)
		n := 10
		for frac[n-1] == '0' {
			n--
		}
		dst = append(dst, frac[:n]...)
	}
	return append(dst, 'Z')
}

// appendString appends a string member (prefix is `,"key":"`) unless the
// value is empty.
func appendString(dst []byte, prefix, value string) []byte {
	if value == "" {
		return dst
	}
	dst = append(dst, prefix...)
	dst = appendJSONString(dst, value)
	return append(dst, '"')
}

// appendName is putName's encoding: a name the client chose, and its exact
// bytes in base64 if it is not UTF-8.
func appendName(dst []byte, prefix, prefixB64, value string) []byte {
	if value == "" {
		return dst
	}
	dst = append(dst, prefix...)
	dst, valid := appendJSONStringValid(dst, value)
	dst = append(dst, '"')
	if !valid {
		dst = append(dst, prefixB64...)
		dst = base64.StdEncoding.AppendEncode(dst, []byte(value))
		dst = append(dst, '"')
	}
	return dst
}

// safeJSON marks the bytes zap copies as they are: printable ASCII but for
// the quote and the backslash.
var safeJSON = func() (t [utf8.RuneSelf]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = b != '"' && b != '\\'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// digits2 holds 00 to 99.
const digits2 = "00010203040506070809101112131415161718192021222324252627282930313233343536373839" +
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879" +
	"8081828384858687888990919293949596979899"

// hexPairs holds the two lower-case hex digits of every byte.
var hexPairs = func() (t [256][2]byte) {
	for b := range t {
		t[b] = [2]byte{hexDigits[b>>4], hexDigits[b&0xF]}
	}
	return t
}()

// appendHex is hex.AppendEncode, a byte pair at a time.
func appendHex(dst, src []byte) []byte {
	for _, b := range src {
		p := hexPairs[b]
		dst = append(dst, p[0], p[1])
	}
	return dst
}

// plain8 reports whether none of 8 bytes needs escaping or a UTF-8 check:
// all are printable ASCII but for the quote and the backslash.
func plain8(s string) bool {
	_ = s[7]
	x := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	// A byte is flagged (its high bit set) if it is >= 0x80, < 0x20, or
	// equal to '"' or '\\'.
	q := x ^ (lo * '"')
	bs := x ^ (lo * '\\')
	flags := x | (x - lo*0x20) | (q - lo) | (bs - lo)
	return flags&hi == 0
}

// appendJSONString appends s escaped as zap's JSON encoder escapes it
// (safeAppendStringLike), without the quotes.
func appendJSONString(dst []byte, s string) []byte {
	dst, _ = appendJSONStringValid(dst, s)
	return dst
}

// appendJSONStringValid is appendJSONString, also reporting whether s is
// valid UTF-8: each byte that is not part of a valid sequence is written
// as \ufffd, quote, backslash, \n, \r and \t as their escapes, other
// control bytes as \u00XX, and everything else (DEL, valid multi-byte
// runes, a literal U+FFFD) as it is.
func appendJSONStringValid(dst []byte, s string) ([]byte, bool) {
	valid := true
	last := 0
	i := 0
	for ; i+8 <= len(s) && plain8(s[i:i+8]); i += 8 { // the common case, 8 bytes at a time
	}
	for i < len(s) {
		b := s[i]
		if b < utf8.RuneSelf {
			if safeJSON[b] {
				i++
				continue
			}
			dst = append(dst, s[last:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			last = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r != utf8.RuneError || size != 1 {
			i += size
			continue
		}
		valid = false
		dst = append(dst, s[last:i]...)
		dst = append(dst, `\ufffd`...)
		i++
		last = i
	}
	return append(dst, s[last:]...), valid
}
