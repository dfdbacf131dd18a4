package window

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkOrdersAdd adds one order to a weekly buyer's half-year history
// (26 order days; every add rewrites the entries).
func BenchmarkOrdersAdd(b *testing.B) {
	var o Orders
	day := int32(20000)
	b.ReportAllocs()
	for b.Loop() {
		o.Add(day, 1, 4999, day, 48)
		day += 7
		if day > 30000 {
			day = 20000
			o = Orders{}
		}
	}
}

// BenchmarkOrdersAddDaily is the worst case: a daily buyer at the entry cap,
// so every add also merges two old entries.
func BenchmarkOrdersAddDaily(b *testing.B) {
	var o Orders
	day := int32(20000)
	b.ReportAllocs()
	for b.Loop() {
		o.Add(day, 1, 4999, day, 48)
		day++
		if day > 30000 {
			day = 20000
			o = Orders{}
		}
	}
}

// BenchmarkOrdersSums computes the four order windows of a weekly buyer.
func BenchmarkOrdersSums(b *testing.B) {
	var o Orders
	day := int32(20000)
	for range 26 {
		o.Add(day, 1, 4999, day, 48)
		day += 7
	}
	b.ReportAllocs()
	var s OrderSums
	for b.Loop() {
		s = o.Sums(day)
	}
	_ = s
}

// BenchmarkEmailsAdd counts one e-mail event, moving the ring every so often.
func BenchmarkEmailsAdd(b *testing.B) {
	var m Emails
	d := NewDecay(60)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		m.Add(20000+int32(i/8), EmailKind(i%4), d)
	}
}

// BenchmarkEmailsWindow sums the 30-day window of a customer mailed
// twice a week, with opens and clicks, as every view of its signals does.
func BenchmarkEmailsWindow(b *testing.B) {
	var m Emails
	d := NewDecay(60)
	for day := int32(20000); day < 20200; day += 3 {
		for k := EmailSent; k <= EmailClicked; k++ {
			m.Add(day, k, d)
		}
	}
	b.ReportAllocs()
	var s EmailSums
	for i := 0; b.Loop(); i++ {
		s = m.Window(20190 + int32(i&7))
	}
	_ = s
}

func BenchmarkTimersSet(b *testing.B) {
	const n = 1 << 20
	var t Timers
	r := rand.New(rand.NewPCG(1, 1))
	for k := range uint32(n) {
		t.Set(k, r.Int64N(1e12))
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		t.Set(uint32(i)%n, r.Int64N(1e12))
	}
}

func BenchmarkTimersPopDue(b *testing.B) {
	const n = 1 << 20
	var t Timers
	r := rand.New(rand.NewPCG(1, 1))
	for k := range uint32(n) {
		t.Set(k, r.Int64N(1e12))
	}
	b.ReportAllocs()
	for b.Loop() {
		k, _, ok := t.PopDue(1 << 62)
		if !ok {
			b.Fatal("empty")
		}
		t.Set(k, r.Int64N(1e12)) // re-arm, as a silence timer does
	}
}
