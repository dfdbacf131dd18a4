package window

import (
	"testing"
	"time"
)

// FuzzDecode feeds arbitrary bytes to every decoder of the package: none may
// panic, and whatever decodes must encode back to the bytes it consumed.
func FuzzDecode(f *testing.F) {
	var o Orders
	o.Add(20000, 1, 1234, 20000, 48)
	o.Add(20010, 2, 99, 20010, 48)
	var m Emails
	m.Add(20000, EmailOpened, NewDecay(30))
	var s Support
	s.Record(20000, SupportOpened, 20000)
	s.OpenTicket(5, 77, false)
	var iv Intervals
	iv.Push(3_600_000 * 30)
	w := NewWatermark(3, time.Minute, time.Minute, time.Unix(0, 0))
	w.Observe(0, 5, time.Unix(0, 0))
	f.Add(byte(0), o.AppendBinary(nil))
	f.Add(byte(1), m.AppendBinary(nil))
	f.Add(byte(2), s.AppendBinary(nil))
	f.Add(byte(3), iv.AppendBinary(nil))
	f.Add(byte(4), w.AppendBinary(nil))
	f.Fuzz(func(t *testing.T, which byte, b []byte) {
		// Whatever decodes must survive use, and re-encode to bytes that
		// decode to an equal state.
		switch which % 5 {
		case 0:
			var x, y Orders
			if _, err := x.DecodeBinary(b); err != nil {
				return
			}
			if _, err := y.DecodeBinary(x.AppendBinary(nil)); err != nil || x != y {
				t.Fatalf("orders re-encode: %v", err)
			}
			x.Sums(30000)
			x.Add(20000, 1, 1, 20000, 8)
		case 1:
			var x, y Emails
			if _, err := x.DecodeBinary(b); err != nil {
				return
			}
			if _, err := y.DecodeBinary(x.AppendBinary(nil)); err != nil || x != y {
				t.Fatalf("emails re-encode: %v", err)
			}
			x.Window(30000)
			x.Baseline(30000, NewDecay(60))
			x.Add(29000, EmailClicked, NewDecay(60))
		case 2:
			var x, y Support
			if _, err := x.DecodeBinary(b); err != nil {
				return
			}
			enc := x.AppendBinary(nil)
			if _, err := y.DecodeBinary(enc); err != nil || string(y.AppendBinary(nil)) != string(enc) {
				t.Fatalf("support re-encode: %v", err)
			}
			x.Sums(30000)
			x.Breach(1<<40, 1)
			x.Record(29000, SupportOpened, 29000)
			x.ResolveTicket(5)
		case 3:
			var x, y Intervals
			if _, err := x.DecodeBinary(b); err != nil {
				return
			}
			if _, err := y.DecodeBinary(x.AppendBinary(nil)); err != nil || x != y {
				t.Fatalf("intervals re-encode: %v", err)
			}
			x.Stats()
		case 4:
			x := NewWatermark(3, time.Minute, time.Minute, time.Unix(0, 0))
			if _, err := x.Restore(b, time.Unix(1, 0)); err != nil {
				return
			}
			x.Advance(time.Unix(100, 0))
		}
	})
}
