package window

import (
	"errors"
	"slices"
)

// Support event flags, combined in one byte per recorded ticket event.
const (
	SupportOpened    uint8 = 1 << iota // a ticket was opened
	SupportResolved                    // a ticket was resolved
	SupportReopened                    // a ticket was reopened
	SupportComplaint                   // the ticket is a complaint
)

// Support limits.
const (
	SupportDays       = 90 // how long ticket events are kept
	MaxSupportEvents  = 32 // ticket events kept at most (the oldest go first)
	MaxOpenTickets    = 8  // open tickets tracked for the SLA at most
	noScore           = 0
	maxTicketsTracked = 1<<16 - 1
)

// Ticket is one open ticket: a hash of its id, when it was (re)opened, and
// whether its SLA breach was already reported.
type Ticket struct {
	ID       uint32
	Since    int64 // Unix ms
	Breached bool
}

// Support keeps a customer's ticket events of the last SupportDays days,
// the open tickets, and the last CSAT and NPS answers. The zero value is
// empty. Customers without support activity need not have one at all.
type Support struct {
	events   []uint32 // day<<8 | flags, by day
	open     []Ticket
	overflow uint16 // open tickets beyond MaxOpenTickets (counted, no SLA)
	csat     int8   // score+1; 0 = none
	nps      int8   // score+1; 0 = none
	csatDay  int32
	npsDay   int32
}

// SupportSums are the ticket counts of the 30- and 90-day windows.
type SupportSums struct {
	Opened30, Opened90     int
	Resolved30, Resolved90 int
	Reopened30, Reopened90 int
	Complaint30, Complaint90 int
}

var errSupport = errors.New("window: corrupt support state")

// Record adds a ticket event with the given flags on day. headDay is the
// customer's newest event day; events on or before headDay-SupportDays are
// dropped, and Record reports false for an event that old.
func (s *Support) Record(day int32, flags uint8, headDay int32) bool {
	headDay = max(headDay, day)
	minDay := headDay - SupportDays + 1
	if day < minDay {
		return false
	}
	k := 0
	for _, e := range s.events {
		if int32(e>>8) >= minDay {
			s.events[k] = e
			k++
		}
	}
	s.events = s.events[:k]
	v := uint32(day)<<8 | uint32(flags)
	i, _ := slices.BinarySearchFunc(s.events, day, func(e uint32, d int32) int {
		if int32(e>>8) <= d {
			return -1
		}
		return 1
	})
	s.events = slices.Insert(s.events, i, v)
	if len(s.events) > MaxSupportEvents {
		s.events = slices.Delete(s.events, 0, len(s.events)-MaxSupportEvents)
	}
	return true
}

// Sums counts the ticket events of the 30 and 90 days ending with asOf.
func (s *Support) Sums(asOf int32) SupportSums {
	var r SupportSums
	for _, e := range s.events {
		age := asOf - int32(e>>8)
		if age < 0 || age >= SupportDays {
			continue
		}
		f := uint8(e)
		in30 := age < 30
		add := func(flag uint8, n30, n90 *int) {
			if f&flag != 0 {
				*n90++
				if in30 {
					*n30++
				}
			}
		}
		add(SupportOpened, &r.Opened30, &r.Opened90)
		add(SupportResolved, &r.Resolved30, &r.Resolved90)
		add(SupportReopened, &r.Reopened30, &r.Reopened90)
		add(SupportComplaint, &r.Complaint30, &r.Complaint90)
	}
	return r
}

// OpenTicket marks ticket id open since the given time. If it is open
// already, restart moves its SLA clock to since (a reopen); otherwise the
// call changes nothing. Past MaxOpenTickets the oldest open ticket stops
// being tracked for the SLA but is still counted as open.
func (s *Support) OpenTicket(id uint32, since int64, restart bool) {
	for i := range s.open {
		if s.open[i].ID == id {
			if restart {
				s.open[i] = Ticket{ID: id, Since: since}
			}
			return
		}
	}
	s.open = append(s.open, Ticket{ID: id, Since: since})
	if len(s.open) > MaxOpenTickets {
		oldest := 0
		for i, t := range s.open {
			if t.Since < s.open[oldest].Since {
				oldest = i
			}
		}
		s.open = slices.Delete(s.open, oldest, oldest+1)
		if s.overflow < maxTicketsTracked {
			s.overflow++
		}
	}
}

// ResolveTicket closes ticket id. It reports whether the ticket was open
// (tracked or counted in the overflow).
func (s *Support) ResolveTicket(id uint32) bool {
	for i := range s.open {
		if s.open[i].ID == id {
			s.open = slices.Delete(s.open, i, i+1)
			return true
		}
	}
	if s.overflow > 0 {
		s.overflow--
		return true
	}
	return false
}

// OpenCount returns the number of open tickets.
func (s *Support) OpenCount() int { return len(s.open) + int(s.overflow) }

// OpenTickets returns the tracked open tickets.
func (s *Support) OpenTickets() []Ticket { return slices.Clone(s.open) }

// NextSLA returns the earliest time at which a tracked open ticket whose
// breach was not reported yet passes the SLA of sla milliseconds.
func (s *Support) NextSLA(sla int64) (int64, bool) {
	due, ok := int64(0), false
	for _, t := range s.open {
		if !t.Breached && (!ok || t.Since+sla < due) {
			due, ok = t.Since+sla, true
		}
	}
	return due, ok
}

// Breach marks the open tickets past the SLA at asOf as reported and
// returns how many were newly marked.
func (s *Support) Breach(asOf, sla int64) int {
	n := 0
	for i := range s.open {
		if !s.open[i].Breached && s.open[i].Since+sla <= asOf {
			s.open[i].Breached = true
			n++
		}
	}
	return n
}

// PastSLA returns how many tracked open tickets are past the SLA at asOf.
func (s *Support) PastSLA(asOf, sla int64) int {
	n := 0
	for _, t := range s.open {
		if t.Since+sla <= asOf {
			n++
		}
	}
	return n
}

// SetCSAT records a CSAT answer (1–5) given on day.
func (s *Support) SetCSAT(score int8, day int32) { s.csat, s.csatDay = score+1, day }

// SetNPS records an NPS answer (0–10) given on day.
func (s *Support) SetNPS(score int8, day int32) { s.nps, s.npsDay = score+1, day }

// CSAT returns the last CSAT answer and its day; ok is false if none.
func (s *Support) CSAT() (score int8, day int32, ok bool) {
	return s.csat - 1, s.csatDay, s.csat != noScore
}

// NPS returns the last NPS answer and its day; ok is false if none.
func (s *Support) NPS() (score int8, day int32, ok bool) {
	return s.nps - 1, s.npsDay, s.nps != noScore
}

// AppendBinary appends the support state to dst.
func (s *Support) AppendBinary(dst []byte) []byte {
	dst = appendUvarint(dst, uint64(len(s.events)))
	for _, e := range s.events {
		dst = appendUvarint(dst, uint64(e))
	}
	dst = appendUvarint(dst, uint64(len(s.open)))
	for _, t := range s.open {
		dst = appendUvarint(dst, uint64(t.ID))
		dst = appendVarint(dst, t.Since)
		if t.Breached {
			dst = append(dst, 1)
		} else {
			dst = append(dst, 0)
		}
	}
	dst = appendUvarint(dst, uint64(s.overflow))
	dst = append(dst, byte(s.csat), byte(s.nps))
	dst = appendUvarint(dst, uint64(s.csatDay))
	return appendUvarint(dst, uint64(s.npsDay))
}

// DecodeBinary reads what AppendBinary wrote and returns the rest of b.
func (s *Support) DecodeBinary(b []byte) ([]byte, error) {
	var out Support
	n, k := uvarint(b)
	if k <= 0 || n > MaxSupportEvents {
		return nil, errSupport
	}
	b = b[k:]
	prev := int32(-1)
	for i := uint64(0); i < n; i++ {
		v, k := uvarint(b)
		if k <= 0 || v>>8 > MaxDay || int32(v>>8) < prev || v&0xff == 0 || v&0xf0 != 0 {
			return nil, errSupport
		}
		prev = int32(v >> 8)
		out.events = append(out.events, uint32(v))
		b = b[k:]
	}
	n, k = uvarint(b)
	if k <= 0 || n > MaxOpenTickets {
		return nil, errSupport
	}
	b = b[k:]
	for i := uint64(0); i < n; i++ {
		id, k := uvarint(b)
		if k <= 0 || id > 1<<32-1 {
			return nil, errSupport
		}
		b = b[k:]
		since, k := varint(b)
		if k <= 0 || len(b) < k+1 || b[k] > 1 {
			return nil, errSupport
		}
		out.open = append(out.open, Ticket{ID: uint32(id), Since: since, Breached: b[k] == 1})
		b = b[k+1:]
	}
	ov, k := uvarint(b)
	if k <= 0 || ov > maxTicketsTracked || len(b) < k+2 {
		return nil, errSupport
	}
	out.overflow = uint16(ov)
	b = b[k:]
	out.csat, out.nps = int8(b[0]), int8(b[1])
	if out.csat < 0 || out.csat > 6 || out.nps < 0 || out.nps > 11 {
		return nil, errSupport
	}
	b = b[2:]
	for _, d := range []*int32{&out.csatDay, &out.npsDay} {
		v, k := uvarint(b)
		if k <= 0 || v > MaxDay {
			return nil, errSupport
		}
		*d = int32(v)
		b = b[k:]
	}
	*s = out
	return b, nil
}
