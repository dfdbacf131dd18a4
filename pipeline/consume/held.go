package consume

import (
	"encoding/binary"
	"errors"
	"slices"
	"sort"
)

// The repartition queue is kept in event-time order (enqueue), so a
// transaction applies some of its records and leaves others, of lower
// offsets, queued: the commit's offset, the lowest still queued, has
// applied records after it. A task that starts again from that offset (a
// restore after a crash, or a rollback after an abort) must not apply
// those again: each would come back as a duplicate or, once its event id
// has left the engine's memory, as a late event counted twice. So every
// commit writes to the changelog (heldKey, same transaction as the
// offsets) which of the records read past the committed offset were still
// queued; the rest were applied, and a task reading them again skips them.
// Kafka Streams has no such record: its repartition topics are read in
// offset order, one partition at a time.

// heldKey is the changelog key of a task's held repartition records.
const heldKey = "\x00held"

const heldVersion = 1

// held is what a commit left of the repartition records read: past the
// committed offset and before next, only the offsets in runs (pairs
// [from, to), ascending, disjoint) were still queued. The zero held (next
// 0) says nothing: every record from the committed offset on is to apply.
type held struct {
	next int64
	runs []int64
}

// applied reports whether the repartition record at off was applied
// before the commit that h describes.
func (h *held) applied(off int64) bool {
	if off >= h.next {
		return false
	}
	// The first run ending after off holds it, if it starts at or before it.
	i := sort.Search(len(h.runs)/2, func(i int) bool { return h.runs[2*i+1] > off })
	return i == len(h.runs)/2 || h.runs[2*i] > off
}

// heldNow is the held of the repartition source s at a commit: its queued
// offsets, and those of skip (what the last restore or rollback started
// from) that s has not read again yet.
func heldNow(s *source, skip *held) held {
	if s.next < 0 {
		return *skip // nothing read yet
	}
	if s.len() == 0 && s.next >= skip.next {
		return held{} // the commit's offset is s.next: nothing applied past it
	}
	offs := make([]int64, 0, s.len())
	for i := range s.len() {
		offs = append(offs, s.at(i).off)
	}
	slices.Sort(offs)
	var h held
	for _, o := range offs {
		if n := len(h.runs); n > 0 && h.runs[n-1] == o {
			h.runs[n-1]++
		} else {
			h.runs = append(h.runs, o, o+1)
		}
	}
	h.next = s.next
	if skip.next > s.next {
		// Not read again yet: still held as skip says.
		for i := 0; i < len(skip.runs); i += 2 {
			from, to := max(skip.runs[i], s.next), skip.runs[i+1]
			switch n := len(h.runs); {
			case from >= to:
			case n > 0 && h.runs[n-1] == from:
				h.runs[n-1] = to
			default:
				h.runs = append(h.runs, from, to)
			}
		}
		h.next = skip.next
	}
	return h
}

func (h held) equal(o held) bool { return h.next == o.next && slices.Equal(h.runs, o.runs) }

func appendHeld(dst []byte, h held) []byte {
	dst = append(dst, heldVersion)
	dst = binary.AppendVarint(dst, h.next)
	dst = binary.AppendUvarint(dst, uint64(len(h.runs)/2))
	last := int64(0)
	for _, o := range h.runs {
		dst = binary.AppendUvarint(dst, uint64(o-last))
		last = o
	}
	return dst
}

func parseHeld(b []byte) (held, error) {
	var h held
	if len(b) == 0 || b[0] != heldVersion {
		return h, errors.New("consume: corrupt held record: version")
	}
	b = b[1:]
	next, n := binary.Varint(b)
	if n <= 0 || next < 0 {
		return h, errors.New("consume: corrupt held record: next")
	}
	b = b[n:]
	runs, n := binary.Uvarint(b)
	if n <= 0 || runs > uint64(len(b)) { // each run takes two bytes at least
		return h, errors.New("consume: corrupt held record: runs")
	}
	b = b[n:]
	h.runs = make([]int64, 0, 2*runs)
	last := int64(0)
	for range 2 * runs {
		d, n := binary.Uvarint(b)
		if n <= 0 || (len(h.runs) > 0 && d == 0) || d > uint64(next-last) {
			return held{}, errors.New("consume: corrupt held record: offsets")
		}
		last += int64(d)
		h.runs, b = append(h.runs, last), b[n:]
	}
	if len(b) != 0 {
		return held{}, errors.New("consume: corrupt held record: trailing bytes")
	}
	h.next = next
	return h, nil
}
