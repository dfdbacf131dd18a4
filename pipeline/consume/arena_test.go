package consume

import (
	"bytes"
	"fmt"
	"testing"
)

// TestArena: values carved from the arena keep their bytes whatever is
// carved or appended after them, including values larger than a block, and
// every record is a distinct zero record.
func TestArena(t *testing.T) {
	var a arena
	var vals [][]byte
	var want []string
	for i := range 3000 {
		s := fmt.Sprintf("customer-%d", i)
		if i%500 == 7 {
			s = string(bytes.Repeat([]byte{'x'}, 3*arenaBytes/2)) // larger than a block
		}
		v := a.bytes(func(b []byte) []byte { return append(b, s...) })
		if cap(v) != len(v) {
			t.Fatalf("value %d: cap %d, len %d: appending to it would reach the next", i, cap(v), len(v))
		}
		vals, want = append(vals, v), append(want, s)
	}
	_ = append(vals[10], "clobber"...) // must copy, not write into vals[11]
	for i, v := range vals {
		if string(v) != want[i] {
			t.Fatalf("value %d changed: %.20q, want %.20q", i, v, want[i])
		}
	}

	seen := map[any]bool{}
	for i := range 1000 {
		r := a.record()
		if r.Topic != "" || r.Value != nil || seen[r] {
			t.Fatalf("record %d: reused or not zero: %+v", i, r)
		}
		seen[r] = true
		r.Topic = "used"
	}
}
