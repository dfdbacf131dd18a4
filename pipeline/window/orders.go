package window

import (
	"encoding/binary"
	"errors"

	"github.com/winback/winback/pipeline/internal/prefetch"
)

// OrderEntry is one day of a customer's orders: the net number of orders
// (placed minus cancelled) and the net spend in cents (placed minus
// cancelled minus refunded) of events whose event time falls on Day.
type OrderEntry struct {
	Day   int32
	Count int32
	Cents int64
}

// MaxOrderEntries is the largest cap Orders.Add accepts; MinOrderEntries
// the smallest (enough for a daily buyer's 30 days, so that merging never
// reaches into the 30-day window).
const (
	MaxOrderEntries = 64
	MinOrderEntries = 32
)

// Orders is a sparse, delta-encoded list of a customer's order days within
// the last Horizon days, oldest first. The zero value is empty. It is stored
// as an immutable string so that a customer with a handful of order days
// costs a handful of bytes: each entry takes a day delta (one byte for gaps
// under 64 days), an optional count, and the zigzag varint of its cents.
type Orders struct {
	enc string
}

// OrderSums are the order windows as of one day: 7, 30 and 90 days ending
// with that day, and the 90 days before the 90-day window; NDay and CDay
// are that day's own (what On gives for it).
type OrderSums struct {
	N7, N30, N90, NPrev90 int32
	C7, C30, C90, CPrev90 int64 // cents
	NDay                  int32
	CDay                  int64
}

var errOrders = errors.New("window: corrupt order entries")

// Len returns the number of stored days.
func (o *Orders) Len() int {
	n := 0
	o.each(func(OrderEntry) { n++ })
	return n
}

// Prefetch starts loading the entries into the CPU caches, so that a
// caller that knows it will need them soon meets no cache miss then.
func (o *Orders) Prefetch() { prefetch.String(o.enc) }

// Bytes returns the encoded size of the entries.
func (o *Orders) Bytes() int { return len(o.enc) }

func (o *Orders) each(fn func(OrderEntry)) {
	it := orderIter{s: o.enc}
	for it.next() {
		fn(it.e)
	}
}

// orderIter walks the encoded entries without a closure, so the hot loops
// inline.
type orderIter struct {
	s string
	e OrderEntry
}

func (it *orderIter) next() bool {
	if len(it.s) == 0 {
		return false
	}
	e, n := decodeEntry(it.s, int64(it.e.Day))
	if n <= 0 {
		it.s = "" // cannot happen for entries built by Add or validated by Decode
		return false
	}
	it.s, it.e = it.s[n:], e
	return true
}

// Entries appends the stored entries, oldest first, to dst.
func (o *Orders) Entries(dst []OrderEntry) []OrderEntry {
	o.each(func(e OrderEntry) { dst = append(dst, e) })
	return dst
}

// decodeEntry decodes one entry after the entry on day prev. It returns
// n <= 0 on malformed input. It is the hot loop of every window query, so
// it reads the varints itself.
func decodeEntry(s string, prev int64) (OrderEntry, int) {
	// Fast path: a one-byte day delta with a count of 1 (the flag bit
	// clear) and cents of up to three bytes (±10,485.75), as most entries
	// are.
	if len(s) >= 2 && s[0] < 0x80 && s[0]&1 == 0 {
		day := prev + int64(s[0]>>1)
		if day <= MaxDay {
			e := OrderEntry{Day: int32(day), Count: 1}
			c := uint64(s[1])
			if c < 0x80 {
				e.Cents = unzig(c)
				return e, 2
			}
			if len(s) >= 3 {
				c = c&0x7f | uint64(s[2])<<7
				if c < 0x80<<7 {
					e.Cents = unzig(c)
					return e, 3
				}
				if len(s) >= 4 && s[3] < 0x80 {
					e.Cents = unzig(c&(1<<14-1) | uint64(s[3])<<14)
					return e, 4
				}
			}
		}
	}
	return decodeEntrySlow(s, prev)
}

func decodeEntrySlow(s string, prev int64) (OrderEntry, int) {
	var vals [3]uint64
	off := 0
	for k := 0; k < 3; k++ {
		if k == 1 && vals[0]&1 == 0 {
			vals[1] = 2 // zigzag(1): the count is 1
			continue
		}
		var x uint64
		var sh uint
		for {
			if off >= len(s) || sh > 63 {
				return OrderEntry{}, -1
			}
			b := s[off]
			off++
			x |= uint64(b&0x7f) << sh
			if b < 0x80 {
				break
			}
			sh += 7
		}
		vals[k] = x
	}
	delta := vals[0] >> 1
	day := prev + int64(delta)
	if delta > MaxDay || day > MaxDay {
		return OrderEntry{}, -1
	}
	count := unzig(vals[1])
	if count > 1<<30 || count < -(1<<30) {
		return OrderEntry{}, -1
	}
	return OrderEntry{Day: int32(day), Count: int32(count), Cents: unzig(vals[2])}, off
}

func unzig(ux uint64) int64 {
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x
}

// Add records count orders and cents on day. headDay is the customer's
// newest event day: entries on or before headDay-Horizon are dropped, and an
// add that old is ignored (Add reports false). Entries that net to zero are
// removed. When more than maxEntries days remain (maxEntries is clamped to
// [MinOrderEntries, MaxOrderEntries]), the two closest entries older than 30 days before
// the newest are merged into the later one.
func (o *Orders) Add(day, count int32, cents int64, headDay int32, maxEntries int) bool {
	maxEntries = min(max(maxEntries, MinOrderEntries), MaxOrderEntries)
	if day > headDay {
		headDay = day
	}
	minDay := headDay - Horizon + 1
	if day < minDay {
		return false
	}
	var buf [MaxOrderEntries + 2]OrderEntry
	es := buf[:0]
	added := false
	enc := o.enc
	var prev int64
	i, dropped := 0, 0 // offset in enc, entries before minDay
	for i < len(enc) {
		// decodeEntry's fast path inline, as in Sums.
		var e OrderEntry
		n := 0
		if b := enc[i]; b < 0x80 && b&1 == 0 && i+1 < len(enc) && prev+int64(b>>1) <= MaxDay {
			d := int32(prev + int64(b>>1))
			if c := uint64(enc[i+1]); c < 0x80 {
				e, n = OrderEntry{Day: d, Count: 1, Cents: unzig(c)}, 2
			} else if i+2 < len(enc) && enc[i+2] < 0x80 {
				e, n = OrderEntry{Day: d, Count: 1, Cents: unzig(c&0x7f | uint64(enc[i+2])<<7)}, 3
			}
		}
		if n == 0 {
			if e, n = decodeEntry(enc[i:], prev); n <= 0 {
				break // cannot happen for entries built by Add or validated by Decode
			}
		}
		i += n
		prev = int64(e.Day)
		if e.Day < minDay {
			dropped++
			continue
		}
		if !added && e.Day >= day {
			if e.Day == day {
				e.Count += count
				e.Cents += cents
				added = true
			} else {
				es = append(es, OrderEntry{Day: day, Count: count, Cents: cents})
				added = true
			}
		}
		es = append(es, e)
	}
	if !added {
		add := OrderEntry{Day: day, Count: count, Cents: cents}
		if (count != 0 || cents != 0) && len(es) < maxEntries && i == len(enc) {
			o.appendNewest(es, dropped, add)
			return true
		}
		es = append(es, add)
	}
	// Drop entries that net to nothing.
	k := 0
	for _, e := range es {
		if e.Count != 0 || e.Cents != 0 {
			es[k] = e
			k++
		}
	}
	es = es[:k]
	for len(es) > maxEntries {
		es = mergeClosest(es)
	}
	o.encode(es)
	return true
}

// mergeClosest merges the adjacent pair with the smallest day gap among the
// entries older than 30 days before the newest (or the oldest pair if there
// is none) into the later day.
func mergeClosest(es []OrderEntry) []OrderEntry {
	newest := es[len(es)-1].Day
	best, bestGap := 0, int32(-1)
	for i := 0; i+1 < len(es); i++ {
		if es[i+1].Day > newest-30 {
			break
		}
		if g := es[i+1].Day - es[i].Day; bestGap < 0 || g < bestGap {
			best, bestGap = i, g
		}
	}
	es[best+1].Count += es[best].Count
	es[best+1].Cents += es[best].Cents
	return append(es[:best], es[best+1:]...)
}

func (o *Orders) encode(es []OrderEntry) {
	var buf [MaxOrderEntries * maxEntryBytes]byte
	b := buf[:0]
	var prev int32
	for _, e := range es {
		// appendEntry, by hand: the call is not inlined, and this is
		// the slow path's hot loop.
		v := uint64(e.Day-prev) << 1
		if e.Count != 1 {
			v |= 1
		}
		b = binary.AppendUvarint(b, v)
		if e.Count != 1 {
			b = binary.AppendVarint(b, int64(e.Count))
		}
		b = binary.AppendVarint(b, e.Cents)
		prev = e.Day
	}
	if string(b) != o.enc {
		o.enc = string(b)
	}
}

// appendNewest stores kept, the entries after the first dropped ones, and
// then add, an entry on a later day: the common case of an order in
// order, with no merge. Only the first kept entry (its day delta is from 0
// now) and add are encoded; the others' bytes stay as they are. The
// result is what encode(append(kept, add)) gives.
func (o *Orders) appendNewest(kept []OrderEntry, dropped int, add OrderEntry) {
	var buf [2 * maxEntryBytes]byte
	if len(kept) == 0 {
		o.enc = string(appendEntry(buf[:0], 0, add))
		return
	}
	rest := o.enc // after the first kept entry
	var prev int64
	for range dropped + 1 {
		e, n := decodeEntry(rest, prev)
		rest, prev = rest[n:], int64(e.Day)
	}
	head := appendEntry(buf[:0], 0, kept[0])
	tail := appendEntry(buf[len(head):len(head)], kept[len(kept)-1].Day, add)
	o.enc = string(head) + rest + string(tail)
}

// maxEntryBytes is the longest encoded entry: three varints.
const maxEntryBytes = 24

// appendEntry appends the encoding of e, the entry after the one on day
// prev (0 for the first), to b.
func appendEntry(b []byte, prev int32, e OrderEntry) []byte {
	v := uint64(e.Day-prev) << 1
	if e.Count != 1 {
		v |= 1
	}
	b = binary.AppendUvarint(b, v)
	if e.Count != 1 {
		b = binary.AppendVarint(b, int64(e.Count))
	}
	return binary.AppendVarint(b, e.Cents)
}

// On returns the net orders and cents of events on day (0, 0 if none, or
// if the day was dropped or merged into a later one).
func (o *Orders) On(day int32) (count int32, cents int64) {
	for it := (orderIter{s: o.enc}); it.next(); {
		if it.e.Day == day {
			return it.e.Count, it.e.Cents
		}
		if it.e.Day > day {
			break
		}
	}
	return 0, 0
}

// Sums returns the windows as of day asOf: entries after asOf are left out.
//
// It is the hot loop of every view of a customer, so it decodes the
// common entries itself (decodeEntry's fast path for a one-byte day delta,
// a count of 1 and cents of one or two bytes) and calls decodeEntry for
// the rest.
func (o *Orders) Sums(asOf int32) OrderSums {
	var s OrderSums
	day := false
	enc := o.enc
	var prev int64
	for i := 0; i < len(enc); {
		var e OrderEntry
		n := 0
		if b := enc[i]; b < 0x80 && b&1 == 0 && i+1 < len(enc) && prev+int64(b>>1) <= MaxDay {
			d := int32(prev + int64(b>>1))
			if c := uint64(enc[i+1]); c < 0x80 {
				e, n = OrderEntry{Day: d, Count: 1, Cents: unzig(c)}, 2
			} else if i+2 < len(enc) && enc[i+2] < 0x80 {
				e, n = OrderEntry{Day: d, Count: 1, Cents: unzig(c&0x7f | uint64(enc[i+2])<<7)}, 3
			}
		}
		if n == 0 {
			if e, n = decodeEntry(enc[i:], prev); n <= 0 {
				break // cannot happen for entries built by Add or validated by Decode
			}
		}
		i += n
		prev = int64(e.Day)
		age := asOf - e.Day
		if age == 0 && !day {
			s.NDay, s.CDay, day = e.Count, e.Cents, true
		}
		switch {
		case age < 0 || age >= 2*90:
		case age >= 90:
			s.NPrev90 += e.Count
			s.CPrev90 += e.Cents
		default:
			s.N90 += e.Count
			s.C90 += e.Cents
			if age < 30 {
				s.N30 += e.Count
				s.C30 += e.Cents
			}
			if age < 7 {
				s.N7 += e.Count
				s.C7 += e.Cents
			}
		}
	}
	return s
}

// AppendBinary appends the encoded entries (length-prefixed) to dst.
func (o *Orders) AppendBinary(dst []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(o.enc)))
	return append(dst, o.enc...)
}

// DecodeBinary reads entries written by AppendBinary from b and returns the
// rest of b. It validates every entry.
func (o *Orders) DecodeBinary(b []byte) ([]byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) || n > MaxOrderEntries*24 {
		return nil, errOrders
	}
	s := string(b[k : k+int(n)])
	var day int64
	cnt := 0
	for rest := s; len(rest) > 0; {
		e, m := decodeEntry(rest, day)
		if m <= 0 || (cnt > 0 && int64(e.Day) <= day) {
			return nil, errOrders
		}
		cnt++
		if cnt > MaxOrderEntries {
			return nil, errOrders
		}
		day = int64(e.Day)
		rest = rest[m:]
	}
	o.enc = s
	return b[k+int(n):], nil
}
