package lapse

import (
	"math"

	"github.com/winback/winback/pipeline/btyd"
)

// silenceMemo keeps the purchase model's silence growth
// (btyd.Params.SilenceGrowth) per Erlang order K and repeat count x. The
// silence at which a customer's P(alive) falls to purchase_lapse.max_p_alive
// is that growth times α/K + t_x: the root search depends on the customer
// only through (x, K), so the task's customers share a few hundred
// searches instead of one per order and one per customer at every refit.
// It holds for one set of population parameters and one threshold, and
// starts over when either changes (a refit, SetPurchaseModel, a restored
// meta); a value it returns is the one btyd would compute, bit for bit.
type silenceMemo struct {
	p     btyd.Params // the parameters, K left 0
	theta float64
	// g[K][x] is the growth; NaN = not known yet.
	g [][]float64
}

// silenceMemoMaxX bounds the repeat counts kept (a customer with more
// searches anew).
const silenceMemoMaxX = 4096

// growth returns q.SilenceGrowth(x, theta).
func (m *silenceMemo) growth(q btyd.Params, x uint32, theta float64) float64 {
	k := max(q.K, 1)
	key := q
	key.K = 0
	if key != m.p || theta != m.theta {
		m.p, m.theta = key, theta
		for _, row := range m.g {
			fillNaN(row)
		}
	}
	if x >= silenceMemoMaxX || k > 64 {
		return q.SilenceGrowth(float64(x), theta)
	}
	for len(m.g) <= k {
		m.g = append(m.g, nil)
	}
	row := m.g[k]
	if n := len(row); int(x) >= n {
		row = append(row, make([]float64, int(x)+1-n)...)
		fillNaN(row[n:])
		m.g[k] = row
	}
	if math.IsNaN(row[x]) {
		row[x] = q.SilenceGrowth(float64(x), theta)
	}
	return row[x]
}

func fillNaN(s []float64) {
	for i := range s {
		s[i] = math.NaN()
	}
}
