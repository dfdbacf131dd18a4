package lapse

import (
	"math"

	"github.com/winback/winback/pipeline/btyd"
)

// The calibrated return probability. Each customer keeps the sufficient
// statistics of an MBG/NBD model (package btyd): x, its repeat purchase
// occasions (repeats), t_x, the time from its first to its newest order,
// and T, its age at the time asked (from firstOrder). The population
// parameters start at btyd.DefaultParams; the engine refits them on a
// sample of its customers at event-time boundaries (model.refit_days, see
// refit.go), and tools that fit on a whole history (evaluate, backtest)
// hand theirs to SetPurchaseModel.

// SetPurchaseModel sets the population parameters behind p_lapse. Invalid
// parameters (not all finite and positive) are ignored and reported false.
// Every customer's CLV cell moves to the new parameters and, with
// purchase_lapse.max_p_alive set, every lapse timer is re-armed (a pass
// over all customers: call it off the hot path).
func (e *Engine) SetPurchaseModel(p btyd.Params) bool {
	if !p.Valid() {
		return false
	}
	e.model = p
	e.reprice()
	return true
}

// SetPopulationOrderValue sets the task's average value per purchase, the
// prior that each customer's order value is shrunk toward in the CLV (0
// turns the shrinkage off). Like SetPurchaseModel it moves no CLV cell:
// each customer's follows at its next order.
func (e *Engine) SetPopulationOrderValue(v float64) {
	if v >= 0 && !math.IsInf(v, 0) {
		e.popAOV = v
	}
}

// PopulationOrderValue returns the task's value per purchase behind the
// CLV's shrinkage (0: none yet).
func (e *Engine) PopulationOrderValue() float64 { return e.popAOV }

// PurchaseModel returns the population parameters behind p_lapse.
func (e *Engine) PurchaseModel() btyd.Params { return e.model }

// purchaseObs returns c's (x, t_x, T) in days as of asOf (Unix ms), and
// false for a customer without a placed order.
func (c *Customer) purchaseObs(asOf int64) (btyd.Obs, bool) { return c.obs(asOf, true) }

// PurchaseStats calls fn with every customer with a placed order and its
// model statistics as of asOf (Unix ms), in slot order. It reads every
// customer: call it off the hot path.
func (e *Engine) PurchaseStats(asOf int64, fn func(c *Customer, o btyd.Obs)) {
	for slot := uint32(0); slot < e.n; slot++ {
		c := e.at(slot)
		if o, ok := c.purchaseObs(asOf); ok {
			fn(c, o)
		}
	}
}

// PLapse returns the probability that c places no order within
// horizonDays after asOf (Unix ms) under the engine's purchase model, with
// dropping out not final (purchase_lapse.dormant_rate), and its
// probability of being active as of asOf; ok is false for a customer
// without a placed order.
func (e *Engine) PLapse(c *Customer, asOf int64, horizonDays float64) (pLapse, pAlive float64, ok bool) {
	o, ok := c.obs(asOf, false) // (x, t_x, T) only: no LogIv
	if !ok {
		return 0, 0, false
	}
	pLapse, pAlive = e.model.PNoPurchaseDormant(o.X, o.Tx, o.T, horizonDays, e.p.cfg.Lapse.DormantRate)
	return pLapse, pAlive, true
}

// DormantRate is the share of its old rate at which p_lapse's model lets
// a customer who dropped out still buy (purchase_lapse.dormant_rate).
func (e *Engine) DormantRate() float64 { return e.p.cfg.Lapse.DormantRate }

// ExpectedOrders returns the expected purchase occasions of c within
// horizonDays after asOf under the engine's purchase model, with
// dropping out final (no dormancy: the CLV's model), 0 without a placed
// order.
func (e *Engine) ExpectedOrders(c *Customer, asOf int64, horizonDays float64) float64 {
	o, ok := c.obs(asOf, false) // (x, t_x, T) only: no LogIv
	if !ok {
		return 0
	}
	return e.model.ExpectedPurchases(o.X, o.Tx, o.T, horizonDays)
}

// Orders returns c's lifetime net orders and its purchase occasions after
// the first (BG/NBD's x).
func (c *Customer) Orders() (net, repeats int) { return int(c.orders), int(c.repeats) }

// LastOrderAt returns the event time (Unix ms) of c's newest placed order,
// 0 if none.
func (c *Customer) LastOrderAt() int64 { return c.lastOrder }

// ActiveReasons returns the reasons active as of c's last evaluation.
func (c *Customer) ActiveReasons() []string {
	var out []string
	for _, r := range reasonsOf(c.active) {
		out = append(out, string(r))
	}
	return out
}

// Obs returns c's model statistics as of asOf (Unix ms); the zero Obs for
// a customer without a placed order.
func (e *Engine) Obs(c *Customer, asOf int64) btyd.Obs {
	o, _ := c.purchaseObs(asOf)
	return o
}

// Each calls fn with every customer, in slot order. It must not run
// concurrently with the engine.
func (e *Engine) Each(fn func(c *Customer)) {
	for slot := uint32(0); slot < e.n; slot++ {
		fn(e.at(slot))
	}
}

// RefitPurchaseModel fits the MBG/NBD population parameters on every
// customer of the engine as of asOf (Unix ms) and sets them; it returns
// the parameters in use afterwards. With too few customers (fewer than
// minCustomers with a placed order) or a fit that fails, the parameters do
// not change. It reads every customer and fits (milliseconds per thousand
// distinct histories): call it off the hot path, e.g. between batches
// every few hours.
func (e *Engine) RefitPurchaseModel(asOf int64, minCustomers int) (btyd.Params, error) {
	var obs []btyd.Obs
	var spend, n float64
	e.PurchaseStats(asOf, func(c *Customer, o btyd.Obs) {
		obs = append(obs, o)
		if c.spend > 0 {
			spend += float64(c.spend) / 100
			n += o.X + 1
		}
	})
	if len(obs) < max(minCustomers, 1) {
		return e.model, nil
	}
	p, err := btyd.Fit(btyd.MBGNBD, obs, e.model)
	if err != nil {
		return e.model, err
	}
	e.SetPurchaseModel(p)
	if n > 0 {
		e.SetPopulationOrderValue(spend / n)
	}
	return e.model, nil
}
