package lapse

import (
	"math/rand/v2"
	"testing"
)

// TestSketchBelow checks the prefix sums that move keeps against sums
// recomputed from the counts, over random moves like the customers' (mostly
// by a bucket or two, some into and out of the sketch).
func TestSketchBelow(t *testing.T) {
	const n = 20
	s := newSketch(n)
	cells := make([]uint8, 50)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 5000 {
		c := r.IntN(len(cells))
		to := cells[c]
		switch x := r.IntN(10); {
		case x == 0:
			to = 0
		case x == 1 || to == 0:
			to = uint8(1 + r.IntN(n-1))
		default:
			to = uint8(min(max(int(to)+r.IntN(5)-2, 1), n-1))
		}
		s.move(cells[c], to)
		cells[c] = to
		var sum uint64
		for b := range n {
			if got := s.countBelow(b); got != sum {
				t.Fatalf("move %d: countBelow(%d) = %d, want %d", i, b, got, sum)
			}
			sum += uint64(s.counts[b])
		}
		if sum != uint64(s.total) {
			t.Fatalf("move %d: total %d, counts sum to %d", i, s.total, sum)
		}
	}
}
