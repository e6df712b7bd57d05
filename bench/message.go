package bench

import (
	"encoding/binary"
	"time"
)

// Every payload starts with a header that lets a subscriber check the
// message: which publisher sent it on which channel, its sequence number
// in that stream, and when it was meant to be sent. The rest is padding.
//
//	magic "pgb1" | publisher uint32 | channel uint32 | seq uint64 | intended unix ns int64
var magic = [4]byte{'p', 'g', 'b', '1'}

type header struct {
	publisher, channel uint32
	seq                uint64
	intended           time.Time
}

// encode writes h at the start of payload, which is at least HeaderSize.
func (h header) encode(payload []byte) {
	copy(payload, magic[:])
	binary.LittleEndian.PutUint32(payload[4:], h.publisher)
	binary.LittleEndian.PutUint32(payload[8:], h.channel)
	binary.LittleEndian.PutUint64(payload[12:], h.seq)
	binary.LittleEndian.PutUint64(payload[20:], uint64(h.intended.UnixNano()))
}

// decodeHeader reads a payload's header; ok is false for a payload that is
// not the benchmark's (another client's, or mangled).
func decodeHeader(payload []byte) (h header, ok bool) {
	if len(payload) < HeaderSize || [4]byte(payload[:4]) != magic {
		return header{}, false
	}
	h.publisher = binary.LittleEndian.Uint32(payload[4:])
	h.channel = binary.LittleEndian.Uint32(payload[8:])
	h.seq = binary.LittleEndian.Uint64(payload[12:])
	h.intended = time.Unix(0, int64(binary.LittleEndian.Uint64(payload[20:])))
	return h, true
}

// streamKey names one publisher's messages on one channel.
type streamKey uint64

func keyOf(publisher, channel uint32) streamKey {
	return streamKey(uint64(publisher)<<32 | uint64(channel))
}

// maxGap bounds the sequence numbers a stream remembers as missing: a gap
// larger than that counts as lost even if its messages arrive later.
const maxGap = 1 << 16

// stream checks one stream as one subscriber receives it. Messages are
// numbered from 0; a number skipped is remembered as missing, so that its
// late arrival counts as out of order, and a number seen twice as
// duplicated. What was published and never arrived is lost (see lost).
type stream struct {
	next       uint64              // every number below next was seen or is missing
	missing    map[uint64]struct{} // skipped numbers that may still arrive
	unique     uint64
	duplicates uint64
	outOfOrder uint64
}

func (s *stream) see(seq uint64) {
	switch {
	case seq == s.next:
		s.next++
		s.unique++
	case seq > s.next:
		if s.missing == nil {
			s.missing = make(map[uint64]struct{})
		}
		for q := max(s.next, seq-min(seq, maxGap)); q < seq; q++ {
			s.missing[q] = struct{}{}
		}
		s.next = seq + 1
		s.unique++
	default:
		if _, late := s.missing[seq]; late {
			delete(s.missing, seq)
			s.outOfOrder++
			s.unique++
		} else {
			s.duplicates++
		}
	}
}

// lost is how many of the acknowledged publishes never arrived. A publish
// that failed may still have been delivered, hence the floor.
func (s *stream) lost(acknowledged uint64) uint64 {
	return acknowledged - min(acknowledged, s.unique)
}
