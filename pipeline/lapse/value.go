package lapse

import "math"

// The task keeps two streaming sketches, each a fixed histogram over
// log-spaced buckets, 16 per decade (each bucket about 15% wide):
//
//   - cohort: the personal usual interval (hours) of every customer with a
//     personal rhythm; its median is the cohort interval used for customers
//     without one.
//   - value: the CLV of every customer with an order; a customer's value
//     percentile is the share of customers below its bucket plus half of
//     its own bucket, which sets the tier (HIGH at or above HighQuantile,
//     LOW below LowQuantile).
//
// Each customer remembers its cell in both, so a change moves one count.
// The sketches are not snapshotted: they are rebuilt from the customers when
// a task is restored, so they always agree with them.
const (
	bucketsPerDecade = 16
	cohortBuckets    = 96  // 1 h … 65535 h
	valueBuckets     = 130 // 1 … 10^8 currency units
)

type sketch struct {
	counts []uint32
	total  uint32
	gen    uint64 // changes with every count, so answers can be memoised

	below    []uint64 // below[b] = sum of counts[:b] as of belowGen
	belowGen uint64
}

func newSketch(n int) sketch { return sketch{counts: make([]uint32, n), gen: 1} }

func (s *sketch) move(from, to uint8) {
	if from == to {
		return
	}
	if from != 0 && s.counts[from] > 0 {
		s.counts[from]--
		s.total--
		s.gen++
	}
	if to != 0 {
		s.counts[to]++
		s.total++
		s.gen++
	}
}

// countBelow returns the sum of the counts of the buckets below b. The
// prefix sums are rebuilt only after the sketch changed: most events move
// no count.
func (s *sketch) countBelow(b int) uint64 {
	if s.belowGen != s.gen {
		if s.below == nil {
			s.below = make([]uint64, len(s.counts))
		}
		var sum uint64
		for i, n := range s.counts {
			s.below[i] = sum
			sum += uint64(n)
		}
		s.belowGen = s.gen
	}
	return s.below[b]
}

func logBucket(x float64, n int) uint8 {
	if !(x >= 1) { // also NaN
		return 1
	}
	b := 1 + int(math.Floor(bucketsPerDecade*math.Log10(x)))
	return uint8(min(max(b, 1), n-1))
}

// bucketMid is the geometric middle of bucket b.
func bucketMid(b int) float64 {
	return math.Pow(10, (float64(b)-0.5)/bucketsPerDecade)
}

// resketch moves c's cells in the sketches to its current state.
func (e *Engine) resketch(c *Customer) {
	var ivb, clvb uint8
	if c.iv.Len() >= e.p.cfg.Lapse.MinOrders-1 {
		med, _ := c.iv.Stats()
		ivb = logBucket(med, cohortBuckets)
	}
	if c.orders > 0 {
		clvb = logBucket(e.clv(c), valueBuckets)
	}
	e.cohort.move(c.ivBucket, ivb)
	e.value.move(c.clvBucket, clvb)
	c.ivBucket, c.clvBucket = ivb, clvb
}

// unsketch removes c from the sketches.
func (e *Engine) unsketch(c *Customer) {
	e.cohort.move(c.ivBucket, 0)
	e.value.move(c.clvBucket, 0)
	c.ivBucket, c.clvBucket = 0, 0
}

// clv is the value c is expected to bring over the next
// value.lifetime_years (the CLV horizon H), as of its last order:
//
//	CLV = min(E[purchases in H], cap) × order value
//
// E[purchases in H] comes from the same purchase model as p_lapse
// (btyd.Params.ExpectedPurchases with x, t_x and T = t_x). The cap is
// twice the rate the history shows, (x+1) purchases over max(t_x,
// value.default_interval_days), times H: the model's population prior
// cannot promise a customer far more than it ever did. The order value is
// the customer's average per purchase occasion shrunk toward the task's
// (set by RefitPurchaseModel; no shrinkage before) with the weight of
// value.shrink_orders purchases, as Gamma-Gamma's posterior mean does:
// (n × own + k × task) / (n + k). As of the last order, so a customer's CLV
// changes only with its own orders and a refit.
func (e *Engine) clv(c *Customer) float64 {
	if c.orders == 0 || c.spend <= 0 || c.lastOrder == 0 || c.firstOrder == 0 {
		return 0
	}
	v := &e.p.cfg.Value
	n := float64(c.repeats) + 1
	aov := float64(c.spend) / 100 / n
	if e.popAOV > 0 {
		aov = (n*aov + v.ShrinkOrders*e.popAOV) / (n + v.ShrinkOrders)
	}
	h := v.LifetimeYears * 365
	o, _ := c.obs(c.lastOrder, false) // ExpectedPurchases reads no LogIv
	exp := e.model.ExpectedPurchases(o.X, o.Tx, o.Tx, h)
	cap := 2 * n / max(o.Tx, v.DefaultIntervalDays) * h
	return min(exp, cap) * aov
}

// percentile returns c's value percentile (0 without orders; 0.5 while the
// task has fewer than MinCustomers buying customers).
func (e *Engine) percentile(c *Customer) float64 {
	b := int(c.clvBucket)
	if b == 0 {
		return 0
	}
	if int(e.value.total) < e.p.cfg.Value.MinCustomers {
		return 0.5
	}
	below := e.value.countBelow(b)
	return (float64(below) + float64(e.value.counts[b])/2) / float64(e.value.total)
}

func (e *Engine) tierOf(c *Customer) uint8 {
	if c.clvBucket == 0 {
		return tierLow
	}
	p := e.percentile(c)
	v := &e.p.cfg.Value
	switch {
	case p >= v.HighQuantile:
		return tierHigh
	case p < v.LowQuantile:
		return tierLow
	}
	return tierMedium
}

// cohortHours is the task's median personal interval in hours, or the
// configured default while fewer than CohortMinCustomers customers have
// one.
func (e *Engine) cohortHours() uint16 {
	if e.cohortMemo.gen != e.cohort.gen {
		e.cohortMemo.h, e.cohortMemo.gen = e.cohortMedian(), e.cohort.gen
	}
	return e.cohortMemo.h
}

func (e *Engine) cohortMedian() uint16 {
	l := &e.p.cfg.Lapse
	if int(e.cohort.total) < l.CohortMinCustomers {
		return uint16(min(max(math.Round(l.CohortDefaultDays*24), 1), math.MaxUint16))
	}
	half := (e.cohort.total + 1) / 2
	var cum uint32
	for b, n := range e.cohort.counts {
		cum += n
		if cum >= half {
			return uint16(min(max(math.Round(bucketMid(b)), 1), math.MaxUint16))
		}
	}
	return uint16(math.Round(l.CohortDefaultDays * 24))
}

// CohortIntervalDays returns the interval (days) used for customers without
// a personal rhythm.
func (e *Engine) CohortIntervalDays() float64 { return float64(e.cohortHours()) / 24 }
