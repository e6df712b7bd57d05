package audit

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// zapCanonical is how records were encoded before the writer had an
// encoder of its own: through zap's JSON encoder.
func zapCanonical(t testing.TB, r *Record, seq uint64, prev string) []byte {
	t.Helper()
	enc := zapcore.NewJSONEncoder(zapcore.EncoderConfig{
		TimeKey: "ts", MessageKey: "event", EncodeTime: zapcore.RFC3339NanoTimeEncoder, LineEnding: "\n",
	})
	buf, err := enc.EncodeEntry(zapcore.Entry{Time: r.Time.UTC(), Message: string(r.Event)},
		[]zapcore.Field{zap.Uint64("seq", seq), zap.Inline(r), zap.String("prev", prev)})
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Free()
	return bytes.Clone(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

func checkEncoding(t testing.TB, e *encoder, r *Record, seq uint64) {
	t.Helper()
	want := zapCanonical(t, r, seq, Genesis)
	if got := e.appendRecord(nil, r, seq, []byte(Genesis)); !bytes.Equal(got, want) {
		t.Fatalf("record %+v:\n got %s\nwant %s", r, got, want)
	}
}

// awkward are the bytes that JSON escaping and the UTF-8 check treat
// specially.
var awkward = []string{"", "a", "orders.eu", "\"", "\\", "\n", "\r", "\t", "\x00", "\x01", "\x1f", " ", "\x7f",
	"é", "€", "\ufffd", "\U0001F600", "\xff", "\xfe", "\xe2\x82", "\xed\xa0\x80", "\xc0\xaf", "\u2028", "<>&"}

func randomName(rng *rand.Rand) string {
	var b []byte
	for range rng.IntN(5) {
		b = append(b, awkward[rng.IntN(len(awkward))]...)
	}
	return string(b)
}

// TestEncoderMatchesZap checks that the writer's encoder writes the bytes
// zap wrote, so that records (and so hashes) are what they always were.
func TestEncoderMatchesZap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	events := []Event{EventConnect, EventAuth, EventAuthz, EventRevoke, EventDisconnect, EventSeal, EventFileStart}
	outcomes := []Outcome{"", Allow, Deny, Success, Failure}
	pick := func(s ...string) string { return s[rng.IntN(len(s))] }
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var e encoder
	var prev Record
	for i := range 20000 {
		r := Record{
			Time:    base.Add(time.Duration(rng.Int64N(int64(3 * time.Second)))),
			Event:   events[rng.IntN(len(events))],
			Outcome: outcomes[rng.IntN(len(outcomes))],
			Tenant:  pick("", "acme", "t\"x"), User: randomName(rng), AuthMethod: pick("", "password", "jwt"),
			ClientAddr: pick("", "127.0.0.1:50312", "[::1]:6000"), ClientName: randomName(rng),
			TLSVersion: pick("", "TLS 1.3"), TLSSubject: pick("", "CN=alice,O=Acme \"x\""),
			Action: pick("", "publish", "subscribe"), Channel: randomName(rng), Reason: randomName(rng),
			Revision: pick("", "3089772db610"), Forced: rng.IntN(2) == 0,
		}
		if rng.IntN(4) > 0 { // a few ids, sharing slots of the encoder's cache
			r.ClientID = []int64{1, 2, 65, 1 << 40}[rng.IntN(4)]
		}
		if rng.IntN(2) == 0 && i > 0 { // the same identity as the record before, or nearly
			r.Tenant, r.User, r.AuthMethod, r.ClientID, r.ClientAddr, r.ClientName, r.TLSVersion, r.TLSSubject =
				prev.Tenant, prev.User, prev.AuthMethod, prev.ClientID, prev.ClientAddr, prev.ClientName, prev.TLSVersion, prev.TLSSubject
			switch rng.IntN(4) {
			case 1:
				r.User += "x"
			case 2:
				r.ClientName = randomName(rng)
			}
		}
		prev = r
		switch rng.IntN(4) {
		case 1:
			r.Time = r.Time.Truncate(time.Second)
		case 2:
			r.Time = r.Time.Truncate(time.Millisecond).In(time.FixedZone("x", 3600))
		case 3:
			r.Time = time.Time{}
		}
		if rng.IntN(2) == 0 {
			r.SetPayload(Level(rng.IntN(4)), []byte(randomName(rng)))
		}
		checkEncoding(t, &e, &r, uint64(i)+1)
	}
	for _, at := range []time.Time{time.Date(9999, 12, 31, 23, 59, 59, 1, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 5, time.UTC),
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), time.Unix(0, 100)} {
		checkEncoding(t, &e, &Record{Time: at, Event: EventSeal}, 1)
	}
}

// FuzzEncoderMatchesZap is TestEncoderMatchesZap on arbitrary names.
func FuzzEncoderMatchesZap(f *testing.F) {
	for _, s := range awkward {
		f.Add(s, s, int64(0))
	}
	f.Fuzz(func(t *testing.T, user, channel string, ns int64) {
		r := Record{Time: time.Unix(0, ns), Event: EventAuthz, Outcome: Allow, User: user, ClientID: 1,
			ClientName: user, Channel: channel, Reason: channel}
		var e encoder
		checkEncoding(t, &e, &r, 7)
	})
}

// TestPlain8 checks the 8-byte fast path against the byte-at-a-time rule,
// for every byte at every position, among bytes that need nothing.
func TestPlain8(t *testing.T) {
	for p := range 8 {
		for b := range 256 {
			s := []byte("abcdefgh")
			s[p] = byte(b)
			want := b < 0x80 && safeJSON[b]
			if got := plain8(string(s)); got != want {
				t.Fatalf("byte %#x at %d: plain8 %v", b, p, got)
			}
		}
	}
}
