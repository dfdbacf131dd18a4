package lapse

import (
	"container/heap"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/winback/winback/pipeline/btyd"
	"github.com/winback/winback/pipeline/window"
)

// The periodic refit of the purchase model. Each task refits its own
// population parameters when its watermark crosses a multiple of
// model.refit_days (event time, from the Unix epoch): it takes the
// customers with an order whose hashed id is among the model.refit_sample
// smallest, fits MBG/NBD on their (x, t_x, T) as of the boundary, starting
// from the parameters in use and with at most twice
// model.refit_max_iterations quasi-Newton iterations, and sets the result with the task's average value per
// purchase in that sample. Then it moves every customer's CLV cell and
// re-arms every lapse timer under the new parameters (a pass over the
// task, as on restore).
//
// Determinism. A refit is a pure function of the task's state at the
// moment the watermark crosses the boundary: the sample is chosen by id
// (not by slot or arrival), the observations are fitted in a fixed order,
// and the timers due before the boundary fire first under the old
// parameters. The events are applied in the same order on a replay, so the
// watermark crosses the boundary at the same event with the same state,
// and the refit gives the same bits. The parameters, the task's value per
// purchase and the boundary go into the engine meta (AppendMeta), in the
// same transaction as the triggers they shaped; a restore takes them from
// there and, at the first Apply or Advance, recomputes every CLV cell and
// lapse timer from them (the snapshots of customers that did not change
// since the refit hold timers armed under the old parameters).

// A refit is a maximum a posteriori fit: each log parameter has a normal
// prior of standard deviation refitPriorSD around btyd.DefaultParams. A
// task's population may have no maximum-likelihood parameters at all (a
// young or steady one where nobody has dropped out yet drives a toward 0),
// and an unbounded fit then walks toward infinity until its iteration cap
// at every refit. Against a sample of 2,000 customers the prior weighs as
// a few customers would. refitTol is the gain still expected, relative
// to the objective, at which the fit stops: the sample's own noise is
// far larger.
const (
	refitPriorSD = 2.0
	refitTol     = 1e-8
)

// The refit's cadence. A refit whose parameters are not significantly
// better than the parameters in use on its sample (a likelihood-ratio
// test: twice the log-likelihood gain below refitStable, the 95% point of
// a chi-square with 4 degrees of freedom, one per parameter) leaves the
// model as good as unchanged: the wait to the next refit doubles, up to
// model.refit_max_days. A refit that gains more, fails, or has too few
// customers brings the wait back to model.refit_days. A young task's parameters move at every refit; a
// mature one's settle, and a backfill of years then costs a refit every
// few months of event time instead of every week. The next boundary is in
// the meta, so a replay and a restore keep the same cadence.
const refitStable = 9.49

// RefitInfo describes one refit, for the OnRefit hook.
type RefitInfo struct {
	// At is the event-time boundary (Unix ms) the refit stands at: the
	// statistics are as of it. Next is the earliest boundary of the next
	// refit.
	At, Next int64
	// Sample is the number of customers read; Customers the task's
	// customers with an order.
	Sample, Customers int
	// Fitted reports whether the parameters moved: false with fewer
	// than model.refit_min_customers in the sample or a failed fit (Err).
	Fitted bool
	Err    error
	// Before and After are the parameters before and after the refit;
	// PopAOV the task's value per purchase in use afterwards.
	Before, After btyd.Params
	PopAOV        float64
	Fit           btyd.FitStats
	// Duration is the wall time of the whole refit: sampling, fitting
	// and the pass that re-prices every customer.
	Duration time.Duration
}

// OnRefit sets a function called after every refit (nil: none). It runs
// synchronously inside Apply, Advance or Follow: keep it short (log and
// count).
func (e *Engine) OnRefit(fn func(RefitInfo)) { e.onRefit = fn }

// TakeMetaDirty reports whether a refit changed the meta (the boundary,
// and perhaps the parameters) since the last call, and clears the flag.
// The runner writes the meta then even if no customer changed, so that a
// restore does not refit again at a boundary already passed.
func (e *Engine) TakeMetaDirty() bool {
	d := e.metaDirty
	e.metaDirty = false
	return d
}

// RefitBoundary returns the event-time boundary (Unix ms) of the task's
// last refit, 0 if none.
func (e *Engine) RefitBoundary() int64 { return e.refitAt }

// refitDue returns the boundary to refit at if the watermark wm has
// crossed a multiple of model.refit_days past the last refit and at or
// past the next refit's earliest boundary.
func (e *Engine) refitDue(wm int64) (int64, bool) {
	days := e.p.cfg.Model.RefitDays
	if days <= 0 || wm == window.NoWatermark {
		return 0, false
	}
	period := int64(days) * window.MsPerDay
	b := wm / period * period
	if wm < 0 && b != wm {
		b -= period
	}
	return b, b > e.refitAt && b >= e.refitNext
}

// sampled is a candidate of the refit sample.
type sampled struct {
	h uint64
	c *Customer
}

// sampleHeap is a max-heap by (hash, id): its top is the first to leave
// when a smaller hash comes.
type sampleHeap []sampled

func (s sampleHeap) Len() int           { return len(s) }
func (s sampleHeap) Less(i, j int) bool { return sampleLess(s[j], s[i]) }
func (s sampleHeap) Swap(i, j int)      { s[i], s[j] = s[j], s[i] }
func (s *sampleHeap) Push(x any)        { *s = append(*s, x.(sampled)) }
func (s *sampleHeap) Pop() any {
	old := *s
	x := old[len(old)-1]
	*s = old[:len(old)-1]
	return x
}

func sampleLess(a, b sampled) bool {
	if a.h != b.h {
		return a.h < b.h
	}
	return a.c.ID() < b.c.ID()
}

// idHash is a 64-bit hash of a customer id (FNV-1a with a final mix), the
// same in every process and for every arrival order.
func idHash(id string) uint64 {
	v := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		v ^= uint64(id[i])
		v *= 1099511628211
	}
	v ^= v >> 33
	v *= 0xff51afd7ed558ccd
	v ^= v >> 33
	return v
}

// sample returns the (at most) n customers with a placed order whose id
// hashes smallest, in (hash, id) order, and the number of customers with a
// placed order.
func (e *Engine) sample(n int) ([]*Customer, int) {
	h := e.refitHeap[:0]
	total := 0
	for slot := uint32(0); slot < e.n; slot++ {
		c := e.at(slot)
		if c.firstOrder == 0 || c.lastOrder == 0 {
			continue
		}
		total++
		s := sampled{idHash(c.ID()), c}
		switch {
		case len(h) < n:
			heap.Push(&h, s)
		case sampleLess(s, h[0]):
			h[0] = s
			heap.Fix(&h, 0)
		}
	}
	slices.SortFunc(h, func(a, b sampled) int {
		if a.h != b.h {
			if a.h < b.h {
				return -1
			}
			return 1
		}
		return strings.Compare(a.c.ID(), b.c.ID())
	})
	out := make([]*Customer, len(h))
	for i, s := range h {
		out[i] = s.c
	}
	clear(h)
	e.refitHeap = h[:0]
	return out, total
}

// refit refits the purchase model as of boundary at (see the top of this
// file) and records at as the last refit.
func (e *Engine) refit(at int64) {
	began := time.Now()
	m := &e.p.cfg.Model
	prev := e.refitAt
	e.refitAt = at
	cs, total := e.sample(m.RefitSample)
	info := RefitInfo{At: at, Sample: len(cs), Customers: total, Before: e.model}
	period := int64(m.RefitDays) * window.MsPerDay
	wait := period
	if len(cs) >= m.RefitMinCustomers {
		withIv := e.model.K > 1
		obs := make([]btyd.Obs, 0, len(cs))
		var spend, n float64
		for _, c := range cs {
			o, _ := c.obs(at, withIv)
			obs = append(obs, o)
			if c.spend > 0 {
				spend += float64(c.spend) / 100
				n += o.X + 1
			}
		}
		opt := btyd.FitOptions{MaxIter: m.RefitMaxIterations, Step: 0.1, Tol: refitTol, PriorSD: refitPriorSD}
		if e.model == btyd.DefaultParams(btyd.MBGNBD) {
			opt.Step = 0.5 // a cold start: the defaults may be far off
		}
		p, st, err := btyd.FitWith(btyd.MBGNBD, obs, e.model, opt)
		info.Fit, info.Err = st, err
		if err == nil && prev > 0 && 2*(st.LL-st.LL0) < refitStable {
			wait = min(2*max(at-prev, period), int64(m.RefitMaxDays)*window.MsPerDay)
		}
		if err == nil {
			e.model = p
			if n > 0 {
				e.popAOV = spend / n
			}
			info.Fitted = true
			e.reprice()
		}
	}
	e.refitNext = at + wait
	info.Next = e.refitNext
	e.stats.Refits++
	e.metaDirty = true
	info.After, info.PopAOV = e.model, e.popAOV
	info.Duration = time.Since(began)
	if e.onRefit != nil {
		e.onRefit(info)
	}
}

// reprice moves every customer's CLV cell and re-arms every lapse timer
// under the current purchase model: after a refit, SetPurchaseModel or a
// restore of the meta, so that both follow from the customers and the
// parameters alone.
//
// A timer that the new parameters move behind the watermark is due now,
// not then: a lapse noticed at this refit has as_of the watermark (the
// evidence's silence runs to it), never a day the pipeline has passed.
func (e *Engine) reprice() {
	rearm := e.p.cfg.Lapse.MaxPAlive > 0
	now := e.wm.Current()
	for slot := uint32(0); slot < e.n; slot++ {
		c := e.at(slot)
		c.modelGap = 0
		if c.orders > 0 || c.clvBucket != 0 {
			e.resketch(c)
		}
		if rearm && c.lastOrder != 0 {
			e.rearm(c)
			if due, ok := e.timers.Due(c.slot); ok && now != window.NoWatermark && due < now {
				e.timers.Set(c.slot, now)
			}
		}
	}
}

// regularity returns the Erlang order K that c's own rhythm lends the
// purchase model: 1/CV² of its kept intervals (CV robust: 1.4826 × MAD /
// median), floored, between 1 and purchase_lapse.max_regularity; 1
// without a personal rhythm.
func (e *Engine) regularity(c *Customer) int {
	kmax := e.p.cfg.Lapse.MaxRegularity
	if kmax <= 1 || c.iv.Len() < e.p.cfg.Lapse.MinOrders-1 {
		return 1
	}
	med, mad := c.iv.Stats()
	if !(med > 0) {
		return 1
	}
	cv := 1.4826 * mad / med
	if cv*cv*float64(kmax) <= 1 {
		return kmax
	}
	return min(max(int(1/(cv*cv)), 1), kmax)
}

// lapseModel returns the purchase model that PURCHASE_LAPSE's evidence
// check reads for c: the population parameters with c's regularity as
// the Erlang order (MBG/CNBD-k with the customer's own K). p_lapse, the
// CLV and the refit keep plain MBG/NBD (K = 1): on the grocery panel a
// per-customer K ranks repeat buyers worse (dropping out final: AUC 0.879 against 0.890 at
// horizon 90), since a few intervals of a real buyer look regular by
// chance; for the timing of a lapse, the rhythm is what matters.
func (e *Engine) lapseModel(c *Customer) btyd.Params {
	q := e.model
	if k := e.regularity(c); k > 1 {
		q.K = k
	}
	return q
}

// obs is purchaseObs; withIv also sums the logs of the kept intervals
// (only MBG/CNBD-k with K > 1 reads them).
func (c *Customer) obs(asOf int64, withIv bool) (btyd.Obs, bool) {
	if c.firstOrder == 0 || c.lastOrder == 0 {
		return btyd.Obs{}, false
	}
	first := millis(c.firstOrder)
	day := float64(window.MsPerDay)
	o := btyd.Obs{
		X:  float64(c.repeats),
		Tx: max(float64(c.lastOrder-first)/day, 0),
		T:  max(float64(asOf-first)/day, 0),
	}
	o.T = max(o.T, o.Tx)
	if o.X == 0 {
		o.Tx = 0
	} else if n := c.iv.Len(); withIv && n > 0 {
		// The kept intervals stand for all x of them.
		var s float64
		for i := range n {
			s += math.Log(max(float64(c.iv.At(i)), 1) / 24)
		}
		o.LogIv = s / float64(n) * o.X
	}
	return o, true
}
