package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
)

// Genesis is the prev of a chain's first record.
var Genesis = string(bytes.Repeat([]byte("0"), 2*sha256.Size))

// hashSuffix frames the hash member, the last of every line:
// `,"hash":"<64 hex digits>"}`.
const (
	hashKey       = `,"hash":"`
	hashSuffixLen = len(hashKey) + 2*sha256.Size + len(`"}`)
)

// MinKeyBytes is the shortest chain key accepted: an HMAC key shorter than
// the hash adds nothing but guessability.
const MinKeyBytes = 32

// chain numbers records and links each to the one before: a record's line
// is its canonical JSON (ending with "prev") with the hash member added,
// hash = HMAC-SHA256(key, prev ‖ canonical JSON). The canonical JSON is the
// exact bytes written, so verification never re-encodes anything.
//
// A chain is used by one goroutine; it reuses its MAC and encodes each
// record straight into the batch being written, so that chaining a record
// allocates nothing.
type chain struct {
	seq  uint64
	prev [2 * sha256.Size]byte // hex, as written
	enc  encoder
	mac  hash.Hash
	sum  [sha256.Size]byte
}

func newChain(key []byte) *chain {
	c := &chain{mac: hmac.New(sha256.New, key)}
	copy(c.prev[:], Genesis)
	return c
}

// prevHash is the hash of the last record chained.
func (c *chain) prevHash() string { return string(c.prev[:]) }

// setPrev continues a chain from a record's hash.
func (c *chain) setPrev(seq uint64, hash string) error {
	if len(hash) != len(c.prev) {
		return errors.New("its hash is not 64 hex digits")
	}
	c.seq = seq
	copy(c.prev[:], hash)
	return nil
}

// next appends the line of the chain's next record to dst.
func (c *chain) next(dst []byte, r *Record) []byte {
	c.seq++
	start := len(dst)
	dst = c.enc.appendRecord(dst, r, c.seq, c.prev[:])
	c.mac.Reset()
	c.mac.Write(c.prev[:])
	c.mac.Write(dst[start:])
	appendHex(c.prev[:0], c.mac.Sum(c.sum[:0]))
	dst = append(dst[:len(dst)-1], hashKey...)
	dst = append(dst, c.prev[:]...)
	return append(dst, "\"}\n"...)
}

func hashOf(key []byte, prev string, canonical []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(prev))
	m.Write(canonical)
	return hex.EncodeToString(m.Sum(nil))
}

// splitLine separates a line (without its newline) into its canonical JSON
// and its hash.
func splitLine(line []byte) (canonical []byte, hash string, err error) {
	if len(line) < hashSuffixLen+2 || !bytes.HasSuffix(line, []byte(`"}`)) ||
		!bytes.Equal(line[len(line)-hashSuffixLen:][:len(hashKey)], []byte(hashKey)) {
		return nil, "", errors.New("not a chained record: it does not end with the hash member")
	}
	hash = string(line[len(line)-hashSuffixLen+len(hashKey) : len(line)-2])
	canonical = append(append([]byte(nil), line[:len(line)-hashSuffixLen]...), '}')
	return canonical, hash, nil
}
