package lapse

import "strings"

// idStore keeps customer ids back to back in append-only blocks, so a
// customer holds a 4-byte reference and a length instead of a 16-byte
// string header and its own small allocation. A block's bytes never move
// or change once written (the builder's capacity is reserved up front and
// a full block is left alone), so the substrings handed out stay valid.
type idStore struct {
	blocks []string // the content of each block so far
	cur    *strings.Builder
	long   []string // ids of longLen bytes or more (or past 4 GiB of ids)
	// bytes stored and bytes of customers that left (approximately, for
	// long ids); the engine rebuilds the store when most are dead.
	bytes, dead int
}

const (
	idBlockSize = 64 << 10
	longLen     = 255
)

func (s *idStore) add(id string) (ref uint32, n uint8) {
	s.bytes += len(id)
	if len(id) >= longLen || (len(s.blocks) == 1<<16 && s.cur.Len()+len(id) > idBlockSize) {
		s.long = append(s.long, strings.Clone(id))
		return uint32(len(s.long) - 1), longLen
	}
	if s.cur == nil || s.cur.Len()+len(id) > idBlockSize {
		s.cur = new(strings.Builder)
		s.cur.Grow(idBlockSize)
		s.blocks = append(s.blocks, "")
	}
	off := s.cur.Len()
	s.cur.WriteString(id)
	b := len(s.blocks) - 1
	s.blocks[b] = s.cur.String()
	return uint32(b)<<16 | uint32(off), uint8(len(id))
}

func (s *idStore) get(ref uint32, n uint8) string {
	if n == longLen {
		return s.long[ref]
	}
	off := int(ref & 0xffff)
	return s.blocks[ref>>16][off : off+int(n)]
}

// release notes that an id of length n (longLen: long) is no longer used.
func (s *idStore) release(n uint8) { s.dead += int(n) }

// wasteful reports whether most of the store's bytes belong to customers
// that left, and they are more than a block: time to rebuild it.
func (s *idStore) wasteful() bool { return s.dead > idBlockSize && 2*s.dead > s.bytes }
