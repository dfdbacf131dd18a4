package window

import (
	"errors"
	"math"
)

// EmailBucketDays is the width of an e-mail bucket in days.
const EmailBucketDays = 2

// EmailBuckets is the number of buckets in the e-mail ring: 15 × 2 days make
// the 30-day window.
const EmailBuckets = 15

// EmailKind selects one of the e-mail counters.
type EmailKind uint8

// The e-mail counters.
const (
	EmailSent EmailKind = iota
	EmailDelivered
	EmailOpened
	EmailClicked
)

const nibbleMax = 15

// Emails counts a customer's e-mails in a ring of EmailBuckets buckets of
// EmailBucketDays days, four 4-bit counters per bucket, plus exponentially
// decayed baseline counts of deliveries, opens and clicks from the buckets
// that left the ring. The zero value is empty.
type Emails struct {
	head int32 // newest bucket number + 1; 0 = empty
	ring [EmailBuckets]uint16
	base [3]float32 // deliveries, opens, clicks, decayed to bucket head-1
}

// EmailSums are the counts of one window.
type EmailSums struct {
	Sent, Delivered, Opened, Clicked int
}

// Deliveries is the number of e-mails that reached the customer: the larger
// of Delivered and Sent, so that platforms that only report one of them
// still count.
func (s EmailSums) Deliveries() int { return max(s.Delivered, s.Sent) }

// EmailBaseline is the decayed long-run count of deliveries, opens and
// clicks, excluding the current 30-day window.
type EmailBaseline struct {
	Deliveries, Opens, Clicks float64
}

var errEmails = errors.New("window: corrupt e-mail ring")

func bucketOf(day int32) int32 { return day / EmailBucketDays }

func slotOf(b int32) int { return int(b % EmailBuckets) }

func nibble(v uint16, k EmailKind) int { return int(v>>(4*k)) & nibbleMax }

// Decay holds the weights of a count 0, 1, 2 … buckets old under one
// half-life, so the hot path does not call math.Exp2. The zero value (or a
// nil *Decay) does not decay.
type Decay struct {
	halfLife float64
	w        [decayTable]float32
}

const decayTable = Horizon/EmailBucketDays + EmailBuckets + 1

// NewDecay returns the weights for a half-life of halfLifeDays (none if
// halfLifeDays <= 0).
func NewDecay(halfLifeDays float64) *Decay {
	d := &Decay{halfLife: halfLifeDays}
	for n := range d.w {
		d.w[n] = d.slow(int32(n))
	}
	return d
}

func (d *Decay) slow(n int32) float32 {
	if d == nil || d.halfLife <= 0 || n <= 0 {
		return 1
	}
	return float32(math.Exp2(-float64(n) * EmailBucketDays / d.halfLife))
}

// weight returns the weight of a count n buckets old.
func (d *Decay) weight(n int32) float32 {
	if d == nil || d.halfLife <= 0 || n <= 0 {
		return 1
	}
	if int(n) < len(d.w) {
		return d.w[n]
	}
	return d.slow(n)
}

// EmailBucket returns the number of the bucket holding day.
func EmailBucket(day int32) int32 { return bucketOf(day) }

// Head returns the newest bucket number + 1, or 0 if nothing was ever
// counted. Buckets before Head()-1 are complete: an event on their days is
// late.
func (m *Emails) Head() int32 { return m.head }

// Bucket returns the counts of bucket b, or zero counts if b is not in the
// ring.
func (m *Emails) Bucket(b int32) EmailSums {
	h := m.head - 1
	if m.head == 0 || b > h || b <= h-EmailBuckets || b < 0 {
		return EmailSums{}
	}
	v := m.ring[slotOf(b)]
	return EmailSums{Sent: nibble(v, EmailSent), Delivered: nibble(v, EmailDelivered), Opened: nibble(v, EmailOpened), Clicked: nibble(v, EmailClicked)}
}

// Empty reports whether nothing was ever counted.
func (m *Emails) Empty() bool { return m.head == 0 }

// Add counts one e-mail event of kind k on day. An event older than the ring but within Horizon days of
// the newest bucket goes straight into the decayed baseline (deliveries,
// opens and clicks only); anything older is ignored and Add reports false.
// d gives the baseline's decay (nil: none).
func (m *Emails) Add(day int32, k EmailKind, d *Decay) bool {
	if k > EmailClicked {
		return false
	}
	b := bucketOf(day)
	if m.head == 0 {
		m.head = b + 1
	}
	h := m.head - 1
	switch {
	case b > h:
		m.advance(b, d)
	case b <= h-EmailBuckets:
		age := h - b
		if age*EmailBucketDays >= Horizon || k == EmailSent {
			return false
		}
		m.base[k-1] += d.weight(age)
		return true
	}
	s := slotOf(b)
	if nibble(m.ring[s], k) < nibbleMax {
		m.ring[s] += 1 << (4 * k)
	}
	return true
}

// advance moves the ring head to bucket b, folding the buckets that leave
// the ring into the decayed baseline.
func (m *Emails) advance(b int32, d *Decay) {
	h := m.head - 1
	f := d.weight(b - h)
	for i := range m.base {
		m.base[i] *= f
	}
	for x := h - EmailBuckets + 1; x <= h; x++ {
		if x < 0 || x > b-EmailBuckets {
			continue
		}
		s := slotOf(x)
		m.fold(m.ring[s], d.weight(b-x))
		m.ring[s] = 0
	}
	m.head = b + 1
}

func (m *Emails) fold(v uint16, w float32) {
	if v == 0 {
		return
	}
	d := max(nibble(v, EmailSent), nibble(v, EmailDelivered))
	m.base[0] += float32(d) * w
	m.base[1] += float32(nibble(v, EmailOpened)) * w
	m.base[2] += float32(nibble(v, EmailClicked)) * w
}

// Window returns the counts of the 15 buckets ending with the bucket of
// asOf (the last 29 or 30 days).
func (m *Emails) Window(asOf int32) EmailSums {
	var s EmailSums
	if m.head == 0 {
		return s
	}
	// The ring's buckets x (h-14 … h) that are in the window: 0 <= x,
	// B-14 <= x <= B, in ring order from slotOf(x). Their four nibbles are summed at once, each in a
	// 16-bit lane of a uint64 (15 × 15 cannot overflow one).
	h, B := m.head-1, bucketOf(asOf)
	var lanes uint64
	lo, hi := max(h, B, EmailBuckets-1)-EmailBuckets+1, min(h, B)
	for x, slot := lo, slotOf(lo); x <= hi; x++ {
		v := uint64(m.ring[slot])
		lanes += v&0xf | (v&0xf0)<<12 | (v&0xf00)<<24 | (v&0xf000)<<36
		if slot++; slot == EmailBuckets {
			slot = 0
		}
	}
	s.Sent = int(lanes >> (16 * EmailSent) & 0xffff)
	s.Delivered = int(lanes >> (16 * EmailDelivered) & 0xffff)
	s.Opened = int(lanes >> (16 * EmailOpened) & 0xffff)
	s.Clicked = int(lanes >> (16 * EmailClicked) & 0xffff)
	return s
}

// Baseline returns the decayed counts as of asOf: the folded baseline
// decayed to asOf's bucket plus the ring buckets that are older than the
// window as of asOf. It is what the baseline will hold once the ring moves
// to asOf, so it does not depend on when the ring last moved. d must be the
// decay Add was given.
func (m *Emails) Baseline(asOf int32, d *Decay) EmailBaseline {
	if m.head == 0 {
		return EmailBaseline{}
	}
	h, B := m.head-1, bucketOf(asOf)
	if B < h {
		B = h
	}
	var c Emails
	c.base = m.base
	f := d.weight(B - h)
	for i := range c.base {
		c.base[i] *= f
	}
	for x := h - EmailBuckets + 1; x <= h; x++ {
		if x < 0 || x > B-EmailBuckets {
			continue
		}
		c.fold(m.ring[slotOf(x)], d.weight(B-x))
	}
	return EmailBaseline{Deliveries: float64(c.base[0]), Opens: float64(c.base[1]), Clicks: float64(c.base[2])}
}

// AppendBinary appends the ring and baseline to dst.
func (m *Emails) AppendBinary(dst []byte) []byte {
	dst = appendUvarint(dst, uint64(m.head))
	if m.head == 0 {
		return dst
	}
	for _, v := range m.ring {
		dst = appendUvarint(dst, uint64(v))
	}
	for _, f := range m.base {
		dst = appendFloat32(dst, f)
	}
	return dst
}

// DecodeBinary reads what AppendBinary wrote and returns the rest of b.
func (m *Emails) DecodeBinary(b []byte) ([]byte, error) {
	var out Emails
	h, k := uvarint(b)
	if k <= 0 || h > MaxDay/EmailBucketDays+1 {
		return nil, errEmails
	}
	b = b[k:]
	out.head = int32(h)
	if h != 0 {
		for i := range out.ring {
			v, k := uvarint(b)
			if k <= 0 || v > math.MaxUint16 {
				return nil, errEmails
			}
			out.ring[i] = uint16(v)
			b = b[k:]
		}
		for i := range out.base {
			f, ok := readFloat32(b)
			if !ok {
				return nil, errEmails
			}
			out.base[i] = f
			b = b[4:]
		}
	}
	*m = out
	return b, nil
}
