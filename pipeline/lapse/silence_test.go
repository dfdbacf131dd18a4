package lapse

import (
	"math"
	"testing"

	"github.com/winback/winback/pipeline/btyd"
)

// TestSilenceMemo: the memo returns what btyd computes, bit for bit,
// across changes of the parameters, the threshold, K and x, and for x
// beyond what it keeps.
func TestSilenceMemo(t *testing.T) {
	var m silenceMemo
	a := btyd.Params{Kind: btyd.MBGNBD, R: 1.26, Alpha: 42, A: 0.37, B: 0.72}
	b := a
	b.R = 1.3
	steps := []struct {
		p     btyd.Params
		k     int
		x     uint32
		theta float64
	}{
		{a, 1, 3, 0.5}, {a, 16, 3, 0.5}, {a, 16, 3, 0.5}, {a, 4, 40, 0.5}, {a, 16, 0, 0.5},
		{b, 16, 3, 0.5}, {b, 16, 3, 0.3}, {a, 16, 3, 0.5}, {a, 32, 200, 0.5},
		{a, 8, silenceMemoMaxX + 5, 0.5}, {a, 8, 2, 0.99},
	}
	for i, s := range steps {
		q := s.p
		q.K = s.k
		got := m.growth(q, s.x, s.theta)
		want := q.SilenceGrowth(float64(s.x), s.theta)
		if math.Float64bits(got) != math.Float64bits(want) {
			t.Errorf("step %d (%v x=%d theta=%v): memo %v, btyd %v", i, q, s.x, s.theta, got, want)
		}
	}
}
