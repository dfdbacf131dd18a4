package window

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

func TestOrdersSums(t *testing.T) {
	var o Orders
	const d0 = 20000
	add := func(day int32, n int32, cents int64) {
		t.Helper()
		if !o.Add(day, n, cents, max(day, lastDay(&o)), 48) {
			t.Fatalf("Add(%d) refused", day)
		}
	}
	add(d0, 1, 1000)       // 200 days before d0+200: outside
	add(d0+30, 1, 2000)    // age 170: prev90
	add(d0+110, 1, 3000)   // age 90: prev90 (first day of it)
	add(d0+111, 1, 4000)   // age 89: 90d
	add(d0+171, 1, 5000)   // age 29: 30d
	add(d0+194, 1, 6000)   // age 6: 7d
	add(d0+194, -1, -6000) // cancelled the same day: the entry vanishes
	add(d0+200, 2, 7000)   // today
	add(d0+200, 0, -500)   // partial refund
	f := func(asOf int32, want OrderSums) {
		t.Helper()
		if got := o.Sums(asOf); got != want {
			t.Fatalf("Sums(%d) = %+v, want %+v", asOf, got, want)
		}
	}
	f(d0+200, OrderSums{N7: 2, N30: 3, N90: 4, NPrev90: 2, C7: 6500, C30: 11500, C90: 15500, CPrev90: 5000, NDay: 2, CDay: 6500})
	// One day later the prev90 entry at age 90 moves... to age 91; the
	// 90-day entry at age 89 becomes prev90.
	f(d0+201, OrderSums{N7: 2, N30: 2, N90: 3, NPrev90: 3, C7: 6500, C30: 6500, C90: 11500, CPrev90: 9000})
	// Entries after asOf do not count.
	f(d0+171, OrderSums{N7: 1, N30: 1, N90: 3, NPrev90: 1, C7: 5000, C30: 5000, C90: 12000, CPrev90: 2000, NDay: 1, CDay: 5000})
	// A day's own orders are On's, on every day.
	for d := int32(d0 - 5); d <= d0+205; d++ {
		s := o.Sums(d)
		if n, c := o.On(d); s.NDay != n || s.CDay != c {
			t.Fatalf("Sums(%d) day's own %d, %d; On %d, %d", d, s.NDay, s.CDay, n, c)
		}
	}
	if n := o.Len(); n != 5 {
		t.Fatalf("Len = %d, want 5 (entry at d0 trimmed, cancelled day removed)", n)
	}
}

func lastDay(o *Orders) int32 {
	es := o.Entries(nil)
	if len(es) == 0 {
		return 0
	}
	return es[len(es)-1].Day
}

func TestOrdersLateAndHorizon(t *testing.T) {
	var o Orders
	o.Add(20100, 1, 100, 20100, 48)
	// A late event 100 days back still lands in its own day.
	if !o.Add(20000, 1, 200, 20100, 48) {
		t.Fatal("late add within the horizon refused")
	}
	if s := o.Sums(20100); s.NPrev90 != 1 || s.CPrev90 != 200 || s.N90 != 1 {
		t.Fatalf("late order in the wrong window: %+v", s)
	}
	// Older than the horizon: ignored.
	if o.Add(20100-Horizon, 1, 300, 20100, 48) {
		t.Fatal("add beyond the horizon accepted")
	}
	// Moving the head trims old entries.
	o.Add(20000+Horizon, 1, 1, 20000+Horizon, 48)
	if es := o.Entries(nil); len(es) != 2 || es[0].Day != 20100 {
		t.Fatalf("entries after trim = %+v", es)
	}
}

func TestOrdersCapKeepsRecentExact(t *testing.T) {
	var o Orders
	var ref []OrderEntry
	const start = 20000
	for d := int32(0); d < 179; d++ { // a daily buyer
		o.Add(start+d, 1, int64(100+d), start+d, 32)
		ref = append(ref, OrderEntry{Day: start + d, Count: 1, Cents: int64(100 + d)})
	}
	if n := o.Len(); n != 32 {
		t.Fatalf("Len = %d, want the cap 32", n)
	}
	asOf := int32(start + 178)
	got := o.Sums(asOf)
	var want OrderSums
	var total int64
	for _, e := range ref {
		age := asOf - e.Day
		total += e.Cents
		if age < 30 {
			want.N30++
			want.C30 += e.Cents
		}
		if age < 7 {
			want.N7++
			want.C7 += e.Cents
		}
	}
	if got.N7 != want.N7 || got.C7 != want.C7 || got.N30 != want.N30 || got.C30 != want.C30 {
		t.Fatalf("7/30-day windows not exact after merging: got %+v want %+v", got, want)
	}
	// Nothing is lost within the horizon: 90d + prev90 hold every order.
	if got.N90+got.NPrev90 != 179 || got.C90+got.CPrev90 != total {
		t.Fatalf("merged totals %d/%d, want 179/%d", got.N90+got.NPrev90, got.C90+got.CPrev90, total)
	}
}

func TestOrdersBinaryRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var o Orders
	head := int32(20000)
	for range 500 {
		head += int32(r.IntN(4))
		day := head - int32(r.IntN(200))
		o.Add(day, int32(r.IntN(3))-1, r.Int64N(100000)-20000, head, 40)
	}
	b := o.AppendBinary([]byte{9})
	var p Orders
	rest, err := p.DecodeBinary(b[1:])
	if err != nil || len(rest) != 0 {
		t.Fatalf("DecodeBinary: rest %d, err %v", len(rest), err)
	}
	if p.enc != o.enc || p.Sums(head) != o.Sums(head) {
		t.Fatal("round trip changed the entries")
	}
	for _, bad := range [][]byte{{5, 1}, {1, 0x81}, {200}, {3, 2, 2, 0}} {
		if _, err := p.DecodeBinary(bad); err == nil {
			t.Errorf("DecodeBinary(%x) accepted corrupt input", bad)
		}
	}
}

// TestDecodeEntryFastPath checks that the fast path of decodeEntry agrees
// with the general decoder on every short input, valid or not.
func TestDecodeEntryFastPath(t *testing.T) {
	thirds := []byte{0, 1, 0x7f, 0x80, 0xff}
	for _, prev := range []int64{0, MaxDay - 40, MaxDay} {
		for b0 := range 256 {
			for b1 := range 256 {
				for _, s := range []string{string([]byte{byte(b0)}), string([]byte{byte(b0), byte(b1)})} {
					checkDecodeEntry(t, s, prev)
				}
				for _, b2 := range thirds {
					checkDecodeEntry(t, string([]byte{byte(b0), byte(b1), b2}), prev)
					for _, b3 := range thirds {
						checkDecodeEntry(t, string([]byte{byte(b0), byte(b1), b2, b3}), prev)
						checkDecodeEntry(t, string([]byte{byte(b0), byte(b1), b2, b3, 0x05}), prev)
					}
				}
			}
		}
	}
}

func checkDecodeEntry(t *testing.T, s string, prev int64) {
	t.Helper()
	e, n := decodeEntry(s, prev)
	we, wn := decodeEntrySlow(s, prev)
	if n <= 0 && wn <= 0 {
		return
	}
	if e != we || n != wn {
		t.Fatalf("decodeEntry(%q, %d) = %+v, %d; want %+v, %d", s, prev, e, n, we, wn)
	}
}

// iterSums is Sums through orderIter, as it was first written: the
// reference for Sums' own decoding loop.
func iterSums(o *Orders, asOf int32) OrderSums {
	var s OrderSums
	day := false
	for it := (orderIter{s: o.enc}); it.next(); {
		e := it.e
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

// TestOrdersSumsMatchesIter checks Sums against orderIter's decoding on
// windows built by Add (every entry shape: counts other than 1, cents of
// every length, long gaps) and on arbitrary bytes (truncated or corrupt
// encodings stop both at the same entry).
func TestOrdersSumsMatchesIter(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for i := range 20000 {
		var o Orders
		day := int32(r.IntN(MaxDay - 400))
		for range r.IntN(80) {
			day += int32(r.IntN(1 << r.IntN(8)))
			cents := int64(r.Uint64() >> (1 + r.IntN(63)))
			n := int32(1)
			switch r.IntN(8) {
			case 0:
				n, cents = -1, -cents
			case 1:
				n = 0
			case 2:
				n = int32(r.IntN(5))
			}
			o.Add(min(day, MaxDay), n, cents, min(day, MaxDay), 64)
		}
		if i%3 == 0 { // arbitrary bytes
			b := make([]byte, r.IntN(40))
			for j := range b {
				b[j] = byte(r.IntN(256))
				if r.IntN(2) == 0 {
					b[j] &= 0x7e
				}
			}
			o.enc = string(b)
			if r.IntN(2) == 0 { // after an entry near MaxDay
				o.enc = string(append(binary.AppendUvarint(nil, uint64(MaxDay-r.IntN(64))<<1), 2)) + o.enc
			}
		}
		for range 10 {
			asOf := day - int32(r.IntN(400)) + 20
			if i%6 == 0 {
				asOf = MaxDay - int32(r.IntN(200))
			}
			if got, want := o.Sums(asOf), iterSums(&o, asOf); got != want {
				t.Fatalf("case %d: Sums(%d) = %+v, want %+v (enc %x)", i, asOf, got, want, o.enc)
			}
		}
	}
}

// iterAdd is Add reading the entries through orderIter, as it was first
// written: the reference for Add's own decoding loop.
func iterAdd(o *Orders, day, count int32, cents int64, headDay int32, maxEntries int) bool {
	maxEntries = min(max(maxEntries, MinOrderEntries), MaxOrderEntries)
	if day > headDay {
		headDay = day
	}
	minDay := headDay - Horizon + 1
	if day < minDay {
		return false
	}
	var es []OrderEntry
	added := false
	for it := (orderIter{s: o.enc}); it.next(); {
		e := it.e
		if e.Day < minDay {
			continue
		}
		if !added && e.Day >= day {
			if e.Day == day {
				e.Count += count
				e.Cents += cents
			} else {
				es = append(es, OrderEntry{Day: day, Count: count, Cents: cents})
			}
			added = true
		}
		es = append(es, e)
	}
	if !added {
		es = append(es, OrderEntry{Day: day, Count: count, Cents: cents})
	}
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

// TestOrdersAddMatchesIter checks Add against the orderIter version on
// random histories: late and same-day adds, cancels and refunds, long
// gaps, the cap, amounts of every size, next to MaxDay too.
func TestOrdersAddMatchesIter(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for i := range 1000 {
		var got, want Orders
		head := int32(r.IntN(MaxDay - 1000))
		if i%5 == 0 {
			head = MaxDay - 800
		}
		for j := range 150 {
			head = min(head+int32(r.IntN(1<<r.IntN(7))), MaxDay)
			day := head - int32(r.IntN(1<<r.IntN(9)))
			if i%3 == 1 {
				day = head // in order, as most orders come (Add's append path)
			}
			cents := int64(r.Uint64() >> (1 + r.IntN(63)))
			n := int32(1)
			switch r.IntN(6) {
			case 0:
				n, cents = -1, -cents
			case 1:
				n, cents = 0, -cents
			}
			maxE := 1 + r.IntN(80)
			okGot := got.Add(day, n, cents, head, maxE)
			okWant := iterAdd(&want, day, n, cents, head, maxE)
			if okGot != okWant || got.enc != want.enc {
				t.Fatalf("case %d, add %d: Add(%d, %d, %d, %d, %d) = %v, %x; want %v, %x", i, j, day, n, cents, head, maxE, okGot, got.enc, okWant, want.enc)
			}
		}
	}
}
