package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
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
// A chain is used by one goroutine; it reuses its MAC and buffers, so that
// chaining a record allocates only the new prev.
type chain struct {
	seq     uint64
	prev    string
	enc     zapcore.Encoder
	mac     hash.Hash
	fields  [3]zapcore.Field
	scratch []byte
	sum     [2 * sha256.Size]byte
}

func newChain(key []byte) *chain {
	return &chain{prev: Genesis, mac: hmac.New(sha256.New, key), enc: zapcore.NewJSONEncoder(zapcore.EncoderConfig{
		TimeKey: "ts", MessageKey: "event",
		EncodeTime: zapcore.RFC3339NanoTimeEncoder, // of a UTC time: see next
		LineEnding: "\n",
	})}
}

// next appends the line of the chain's next record to dst.
func (c *chain) next(dst []byte, r *Record) ([]byte, error) {
	c.seq++
	c.fields = [3]zapcore.Field{zap.Uint64("seq", c.seq), zap.Inline(r), zap.String("prev", c.prev)}
	buf, err := c.enc.EncodeEntry(zapcore.Entry{Time: r.Time.UTC(), Message: string(r.Event)}, c.fields[:])
	if err != nil {
		c.seq--
		return dst, err
	}
	defer buf.Free()
	canonical := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	c.mac.Reset()
	c.scratch = append(c.scratch[:0], c.prev...)
	c.mac.Write(c.scratch)
	c.mac.Write(canonical)
	hex.Encode(c.sum[:], c.mac.Sum(c.scratch[:0]))
	dst = append(dst, canonical[:len(canonical)-1]...)
	dst = append(dst, hashKey...)
	dst = append(dst, c.sum[:]...)
	dst = append(dst, "\"}\n"...)
	c.prev = string(c.sum[:])
	return dst, nil
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
