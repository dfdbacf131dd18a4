package window

import (
	"encoding/binary"
	"errors"
	"slices"

	"github.com/winback/winback/pipeline/internal/prefetch"
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
	eventBytes        = 4  // day<<8 | flags, little endian
	ticketBytes       = 13 // id (4), since (8), breached (1)
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
//
// The events and open tickets live in one immutable string, rebuilt on each
// change (ticket events are rare), so a customer with a ticket or two costs
// a few dozen bytes and no spare slice capacity.
type Support struct {
	data     string // nEvents, nOpen, events (eventBytes each, by day), tickets (ticketBytes each)
	overflow uint16 // open tickets beyond MaxOpenTickets (counted, no SLA)
	csat     int8   // score+1; 0 = none
	nps      int8   // score+1; 0 = none
	csatDay  uint16
	npsDay   uint16
}

// SupportSums are the ticket counts of the 30- and 90-day windows.
type SupportSums struct {
	Opened30, Opened90       int
	Resolved30, Resolved90   int
	Reopened30, Reopened90   int
	Complaint30, Complaint90 int
}

var errSupport = errors.New("window: corrupt support state")

// unpacked is the decoded form of Support.data.
type unpacked struct {
	events []uint32
	open   []Ticket
}

func (s *Support) unpack(ev *[MaxSupportEvents + 1]uint32, tk *[MaxOpenTickets + 1]Ticket) unpacked {
	u := unpacked{events: ev[:0], open: tk[:0]}
	if len(s.data) < 2 {
		return u
	}
	ne, no := int(s.data[0]), int(s.data[1])
	b := s.data[2:]
	for i := 0; i < ne; i++ {
		u.events = append(u.events, uint32(b[0])|uint32(b[1])<<8|uint32(b[2])<<16|uint32(b[3])<<24)
		b = b[eventBytes:]
	}
	for i := 0; i < no; i++ {
		var t Ticket
		t.ID = uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
		var since uint64
		for k := 7; k >= 0; k-- {
			since = since<<8 | uint64(b[4+k])
		}
		t.Since, t.Breached = int64(since), b[12] == 1
		u.open = append(u.open, t)
		b = b[ticketBytes:]
	}
	return u
}

func (s *Support) pack(u unpacked) {
	if len(u.events) == 0 && len(u.open) == 0 {
		s.data = ""
		return
	}
	var buf [2 + eventBytes*(MaxSupportEvents+1) + ticketBytes*(MaxOpenTickets+1)]byte
	b := append(buf[:0], byte(len(u.events)), byte(len(u.open)))
	for _, e := range u.events {
		b = binary.LittleEndian.AppendUint32(b, e)
	}
	for _, t := range u.open {
		b = binary.LittleEndian.AppendUint32(b, t.ID)
		b = binary.LittleEndian.AppendUint64(b, uint64(t.Since))
		if t.Breached {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
	}
	if string(b) != s.data {
		s.data = string(b)
	}
}

// Record adds a ticket event with the given flags on day. headDay is the
// customer's newest event day; events on or before headDay-SupportDays are
// dropped, and Record reports false for an event that old.
func (s *Support) Record(day int32, flags uint8, headDay int32) bool {
	headDay = max(headDay, day)
	minDay := headDay - SupportDays + 1
	if day < minDay || day > MaxDay {
		return false
	}
	var ev [MaxSupportEvents + 1]uint32
	var tk [MaxOpenTickets + 1]Ticket
	u := s.unpack(&ev, &tk)
	k := 0
	for _, e := range u.events {
		if int32(e>>8) >= minDay {
			u.events[k] = e
			k++
		}
	}
	u.events = u.events[:k]
	i, _ := slices.BinarySearchFunc(u.events, day, func(e uint32, d int32) int {
		if int32(e>>8) <= d {
			return -1
		}
		return 1
	})
	u.events = slices.Insert(u.events, i, uint32(day)<<8|uint32(flags))
	if len(u.events) > MaxSupportEvents {
		u.events = u.events[len(u.events)-MaxSupportEvents:]
	}
	s.pack(u)
	return true
}

// Sums counts the ticket events of the 30 and 90 days ending with asOf.
func (s *Support) Sums(asOf int32) SupportSums {
	var r SupportSums
	if len(s.data) < 2 {
		return r
	}
	ne := int(s.data[0])
	for i := 0; i < ne; i++ {
		o := 2 + eventBytes*i
		e := uint32(s.data[o]) | uint32(s.data[o+1])<<8 | uint32(s.data[o+2])<<16 | uint32(s.data[o+3])<<24
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
	var ev [MaxSupportEvents + 1]uint32
	var tk [MaxOpenTickets + 1]Ticket
	u := s.unpack(&ev, &tk)
	for i := range u.open {
		if u.open[i].ID == id {
			if restart {
				u.open[i] = Ticket{ID: id, Since: since}
				s.pack(u)
			}
			return
		}
	}
	u.open = append(u.open, Ticket{ID: id, Since: since})
	if len(u.open) > MaxOpenTickets {
		oldest := 0
		for i, t := range u.open {
			if t.Since < u.open[oldest].Since {
				oldest = i
			}
		}
		u.open = slices.Delete(u.open, oldest, oldest+1)
		if s.overflow < maxTicketsTracked {
			s.overflow++
		}
	}
	s.pack(u)
}

// ResolveTicket closes ticket id. It reports whether the ticket was open
// (tracked or counted in the overflow).
func (s *Support) ResolveTicket(id uint32) bool {
	var ev [MaxSupportEvents + 1]uint32
	var tk [MaxOpenTickets + 1]Ticket
	u := s.unpack(&ev, &tk)
	for i := range u.open {
		if u.open[i].ID == id {
			u.open = slices.Delete(u.open, i, i+1)
			s.pack(u)
			return true
		}
	}
	if s.overflow > 0 {
		s.overflow--
		return true
	}
	return false
}

func (s *Support) nOpen() int {
	if len(s.data) < 2 {
		return 0
	}
	return int(s.data[1])
}

// OpenCount returns the number of open tickets.
func (s *Support) OpenCount() int { return s.nOpen() + int(s.overflow) }

// Prefetch starts loading the ticket events and tickets into the CPU
// caches; see Orders.Prefetch.
func (s *Support) Prefetch() { prefetch.String(s.data) }

// HeapBytes returns the bytes of the encoded events and tickets (the
// struct itself is not counted).
func (s *Support) HeapBytes() int { return len(s.data) }

// OpenTickets returns the tracked open tickets.
func (s *Support) OpenTickets() []Ticket {
	var ev [MaxSupportEvents + 1]uint32
	var tk [MaxOpenTickets + 1]Ticket
	return slices.Clone(s.unpack(&ev, &tk).open)
}

func (s *Support) eachOpen(fn func(t Ticket)) {
	n := s.nOpen()
	if n == 0 {
		return
	}
	var ev [MaxSupportEvents + 1]uint32
	var tk [MaxOpenTickets + 1]Ticket
	for _, t := range s.unpack(&ev, &tk).open {
		fn(t)
	}
}

// NextSLA returns the earliest time at which a tracked open ticket whose
// breach was not reported yet passes the SLA of sla milliseconds.
func (s *Support) NextSLA(sla int64) (int64, bool) {
	due, ok := int64(0), false
	s.eachOpen(func(t Ticket) {
		if !t.Breached && (!ok || t.Since+sla < due) {
			due, ok = t.Since+sla, true
		}
	})
	return due, ok
}

// Breach marks the open tickets past the SLA at asOf as reported and
// returns how many were newly marked.
func (s *Support) Breach(asOf, sla int64) int {
	if s.nOpen() == 0 {
		return 0
	}
	var ev [MaxSupportEvents + 1]uint32
	var tk [MaxOpenTickets + 1]Ticket
	u := s.unpack(&ev, &tk)
	n := 0
	for i := range u.open {
		if !u.open[i].Breached && u.open[i].Since+sla <= asOf {
			u.open[i].Breached = true
			n++
		}
	}
	if n > 0 {
		s.pack(u)
	}
	return n
}

// PastSLA returns how many tracked open tickets are past the SLA at asOf.
func (s *Support) PastSLA(asOf, sla int64) int {
	n := 0
	s.eachOpen(func(t Ticket) {
		if t.Since+sla <= asOf {
			n++
		}
	})
	return n
}

func clampDay(d int32) uint16 { return uint16(min(max(d, 0), MaxDay)) }

// SetCSAT records a CSAT answer (1–5) given on day.
func (s *Support) SetCSAT(score int8, day int32) { s.csat, s.csatDay = score+1, clampDay(day) }

// SetNPS records an NPS answer (0–10) given on day.
func (s *Support) SetNPS(score int8, day int32) { s.nps, s.npsDay = score+1, clampDay(day) }

// CSAT returns the last CSAT answer and its day; ok is false if none.
func (s *Support) CSAT() (score int8, day int32, ok bool) {
	return s.csat - 1, int32(s.csatDay), s.csat != noScore
}

// NPS returns the last NPS answer and its day; ok is false if none.
func (s *Support) NPS() (score int8, day int32, ok bool) {
	return s.nps - 1, int32(s.npsDay), s.nps != noScore
}

// AppendBinary appends the support state to dst.
func (s *Support) AppendBinary(dst []byte) []byte {
	dst = appendUvarint(dst, uint64(len(s.data)))
	dst = append(dst, s.data...)
	dst = appendUvarint(dst, uint64(s.overflow))
	dst = append(dst, byte(s.csat), byte(s.nps))
	dst = appendUvarint(dst, uint64(s.csatDay))
	return appendUvarint(dst, uint64(s.npsDay))
}

// DecodeBinary reads what AppendBinary wrote and returns the rest of b. It
// validates every event and ticket.
func (s *Support) DecodeBinary(b []byte) ([]byte, error) {
	var out Support
	n, k := uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) || n == 1 {
		return nil, errSupport
	}
	data := b[k : k+int(n)]
	b = b[k+int(n):]
	if n >= 2 {
		ne, no := int(data[0]), int(data[1])
		if ne > MaxSupportEvents || no > MaxOpenTickets || len(data) != 2+eventBytes*ne+ticketBytes*no || ne+no == 0 {
			return nil, errSupport
		}
		prev := int32(-1)
		for i := 0; i < ne; i++ {
			v := binary.LittleEndian.Uint32(data[2+eventBytes*i:])
			if v>>8 > MaxDay || int32(v>>8) < prev || v&0xff == 0 || v&0xf0 != 0 {
				return nil, errSupport
			}
			prev = int32(v >> 8)
		}
		for i := 0; i < no; i++ {
			if f := data[2+eventBytes*ne+ticketBytes*i+12]; f > 1 {
				return nil, errSupport
			}
		}
		out.data = string(data)
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
	for _, d := range []*uint16{&out.csatDay, &out.npsDay} {
		v, k := uvarint(b)
		if k <= 0 || v > MaxDay {
			return nil, errSupport
		}
		*d = uint16(v)
		b = b[k:]
	}
	*s = out
	return b, nil
}
