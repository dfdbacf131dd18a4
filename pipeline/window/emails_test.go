package window

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestEmailsWindow(t *testing.T) {
	var m Emails
	const d0 = 20000                 // even: bucket boundary
	for i := int32(0); i < 40; i++ { // one delivered e-mail a day, opened every other day
		m.Add(d0+i, EmailDelivered, nil)
		if i%2 == 0 {
			m.Add(d0+i, EmailOpened, nil)
		}
	}
	s := m.Window(d0 + 39)
	// The window is 15 buckets of 2 days: days d0+10 … d0+39.
	if s.Delivered != 30 || s.Opened != 15 || s.Deliveries() != 30 {
		t.Fatalf("window = %+v", s)
	}
	// The 10 older days went to the baseline, decayed.
	b := m.Baseline(d0+39, nil) // no decay: plain counts
	if math.Abs(b.Deliveries-10) > 1e-6 || math.Abs(b.Opens-5) > 1e-6 {
		t.Fatalf("baseline without decay = %+v", b)
	}
	// As of a later day the window empties into the baseline.
	if s := m.Window(d0 + 39 + 40); s.Delivered != 0 {
		t.Fatalf("window 40 days later = %+v", s)
	}
	if b := m.Baseline(d0+79, nil); math.Abs(b.Deliveries-40) > 1e-6 {
		t.Fatalf("baseline 40 days later = %+v", b)
	}
}

func TestEmailsBaselineMatchesFold(t *testing.T) {
	// Baseline as of a day must equal what the ring holds after it moves
	// there, so the figure does not depend on when the customer's next
	// e-mail arrives.
	var m Emails
	for i := int32(0); i < 50; i += 3 {
		m.Add(20000+i, EmailDelivered, NewDecay(45))
		m.Add(20000+i, EmailOpened, NewDecay(45))
		m.Add(20000+i, EmailClicked, NewDecay(45))
	}
	want := m.Baseline(20100, NewDecay(45))
	m.Add(20100, EmailSent, NewDecay(45)) // moves the ring; SENT is not in the baseline
	got := m.Baseline(20100, NewDecay(45))
	if math.Abs(got.Deliveries-want.Deliveries) > 1e-4 || math.Abs(got.Opens-want.Opens) > 1e-4 {
		t.Fatalf("baseline after move %+v, predicted %+v", got, want)
	}
	// Half-life 45 days: 17 e-mails between 50 and 100 days old weigh
	// between 2^-(100/45) and 2^-(50/45) each.
	if got.Deliveries < 17*math.Exp2(-100.0/45) || got.Deliveries > 17*math.Exp2(-50.0/45) {
		t.Fatalf("decayed deliveries %v out of range", got.Deliveries)
	}
}

func TestEmailsLateAndSaturation(t *testing.T) {
	var m Emails
	m.Add(20100, EmailDelivered, nil)
	// Late but within the ring: in the window.
	m.Add(20090, EmailOpened, nil)
	if s := m.Window(20100); s.Opened != 1 {
		t.Fatalf("late open in ring not counted: %+v", s)
	}
	// Late and older than the ring: into the baseline.
	if !m.Add(20000, EmailDelivered, nil) {
		t.Fatal("late delivery within the horizon refused")
	}
	if b := m.Baseline(20100, nil); b.Deliveries != 1 {
		t.Fatalf("late delivery not in the baseline: %+v", b)
	}
	// Beyond the horizon: dropped.
	if m.Add(20100-Horizon-2, EmailDelivered, nil) {
		t.Fatal("delivery beyond the horizon accepted")
	}
	for range 40 {
		m.Add(20101, EmailClicked, nil)
	}
	if s := m.Window(20101); s.Clicked != nibbleMax || s.Delivered != 1 {
		t.Fatalf("saturation spilled into another counter: %+v", s)
	}
}

func TestEmailsBinaryRoundTrip(t *testing.T) {
	var m Emails
	for i := int32(0); i < 90; i += 2 {
		m.Add(20000+i, EmailKind(i%4), NewDecay(30))
	}
	b := m.AppendBinary(nil)
	var p Emails
	if rest, err := p.DecodeBinary(b); err != nil || len(rest) != 0 || p != m {
		t.Fatalf("round trip: %v, rest %d, equal %v", err, len(rest), p == m)
	}
	if _, err := p.DecodeBinary(b[:len(b)-1]); err == nil {
		t.Fatal("truncated input accepted")
	}
}

// TestEmailsBucket: Head moves with the newest bucket and Bucket returns
// one bucket's counts while it is in the ring.
func TestEmailsBucket(t *testing.T) {
	var m Emails
	if m.Head() != 0 || m.Bucket(0) != (EmailSums{}) {
		t.Fatalf("empty: head %d, bucket %+v", m.Head(), m.Bucket(0))
	}
	const d0 = 20000
	m.Add(d0, EmailSent, nil)
	m.Add(d0+1, EmailDelivered, nil)
	m.Add(d0+1, EmailOpened, nil)
	if got, want := m.Head(), EmailBucket(d0)+1; got != want {
		t.Fatalf("head %d, want %d", got, want)
	}
	m.Add(d0+4, EmailDelivered, nil)
	for _, c := range []struct {
		b    int32
		want EmailSums
	}{
		{EmailBucket(d0), EmailSums{Sent: 1, Delivered: 1, Opened: 1}},
		{EmailBucket(d0 + 2), EmailSums{}},
		{EmailBucket(d0 + 4), EmailSums{Delivered: 1}},
		{EmailBucket(d0 + 6), EmailSums{}}, // after the head
	} {
		if got := m.Bucket(c.b); got != c.want {
			t.Errorf("bucket %d = %+v, want %+v", c.b, got, c.want)
		}
	}
	// Once the ring moved a full window on, the bucket is in the baseline.
	m.Add(d0+4+2*EmailBuckets, EmailSent, nil)
	if got := m.Bucket(EmailBucket(d0)); got != (EmailSums{}) {
		t.Errorf("bucket left the ring but reads %+v", got)
	}
}

// loopWindow is Window as a plain loop over the ring, nibble by nibble:
// the reference for Window's summing of all four counters at once.
func loopWindow(m *Emails, asOf int32) EmailSums {
	var s EmailSums
	if m.head == 0 {
		return s
	}
	h, B := m.head-1, bucketOf(asOf)
	for x := h - EmailBuckets + 1; x <= h; x++ {
		if x < 0 || x <= B-EmailBuckets || x > B {
			continue
		}
		v := m.ring[slotOf(x)]
		s.Sent += nibble(v, EmailSent)
		s.Delivered += nibble(v, EmailDelivered)
		s.Opened += nibble(v, EmailOpened)
		s.Clicked += nibble(v, EmailClicked)
	}
	return s
}

// TestEmailsWindowMatchesLoop checks Window against the plain loop for
// rings filled at random (saturated counters too) and days before, in
// and after the ring's range.
func TestEmailsWindowMatchesLoop(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for i := range 20000 {
		var m Emails
		d0 := int32(r.IntN(40))
		day, step := d0, 1+r.IntN(3)
		if i%4 == 0 {
			step = 1 // dense: counters saturate
		}
		for range r.IntN(400) {
			if r.IntN(8*step) == 0 {
				day += int32(1 + r.IntN(3))
			}
			m.Add(day, EmailKind(r.IntN(4)), nil)
		}
		for range 20 {
			asOf := d0 + int32(r.IntN(int(day-d0)+80)) - 20
			if got, want := m.Window(asOf), loopWindow(&m, asOf); got != want {
				t.Fatalf("case %d: Window(%d) = %+v, want %+v (ring %v, head %d)", i, asOf, got, want, m.ring, m.head)
			}
		}
	}
}
