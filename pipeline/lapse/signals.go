package lapse

import (
	"math"

	"github.com/winback/winback/pipeline/window"
)

// gapInfo is a customer's purchase rhythm and the silence that makes a
// lapse.
type gapInfo struct {
	usualDays, spreadDays float64
	personal              bool
	// modelDays is the silence at which the purchase model's P(alive)
	// falls to purchase_lapse.max_p_alive (0 with the check off).
	modelDays float64
	gapDays   float64
	ms        int64
}

// gap returns c's rhythm: the median of its last intervals with their
// spread (1.4826 × MAD, a robust standard deviation) once it has
// MinOrders purchase occasions. Before that it is the cohort median, but no
// less than CohortMinDays nor than the longest interval the customer
// already showed: a few intervals are too few to trust, but enough to know
// the customer is not late yet (a monthly buyer's second order must not be
// judged by a weekly cohort).
func (e *Engine) gap(c *Customer) gapInfo {
	l := &e.p.cfg.Lapse
	var g gapInfo
	if c.iv.Len() >= l.MinOrders-1 {
		med, mad := c.iv.Stats()
		g.personal = true
		g.usualDays = med / 24
		g.spreadDays = 1.4826 * mad / 24
		g.gapDays = max(l.Factor*g.usualDays, g.usualDays+l.SpreadFactor*g.spreadDays)
	} else {
		g.usualDays = float64(c.cohortH) / 24
		if c.cohortH == 0 {
			g.usualDays = l.CohortDefaultDays
		}
		g.usualDays = max(g.usualDays, l.CohortMinDays, c.iv.Max()/24)
		g.gapDays = l.Factor * g.usualDays
	}
	if l.MaxPAlive > 0 && c.firstOrder != 0 && c.lastOrder != 0 {
		tx := max(float64(c.lastOrder-millis(c.firstOrder))/float64(window.MsPerDay), 0)
		if c.modelGap == 0 {
			q := e.lapseModel(c)
			c.modelGap = float32(q.SilenceFromGrowth(e.silence.growth(q, c.repeats, l.MaxPAlive), tx)) + 1
		}
		g.modelDays = float64(c.modelGap) - 1
		g.gapDays = max(g.gapDays, g.modelDays)
	}
	g.gapDays = min(max(g.gapDays, l.MinGapDays), l.MaxGapDays)
	g.ms = int64(math.Round(g.gapDays * float64(window.MsPerDay)))
	return g
}

// view is everything the signals look at, as of one event time.
type view struct {
	T   int64
	day int32

	o         window.OrderSums
	g         gapInfo
	lapseDue  int64 // 0 without orders
	sinceDays float64

	m                   window.EmailSums
	base                window.EmailBaseline
	openRate, clickRate float64
	openBase, clickBase float64
	openP, clickP       float64 // binomial tail probabilities
	openS, openS0       float64 // the open rate's CUSUM (nats) and the rate its run tests against

	s              window.SupportSums
	openTickets    int
	pastSLA        int
	csat, nps      int8 // event.NoScore (-1) if none
	frictionCauses int

	sev  [nReasons]float64
	risk float64

	clv, pct float64
	// p_lapse and P(alive) under the purchase model (model.go); hasP is
	// false for a customer without a placed order.
	pLapse, pAlive float64
	hasP           bool
}

func (v *view) active() uint8 {
	var m uint8
	for r, s := range v.sev {
		if s > 0 {
			m |= 1 << r
		}
	}
	return m
}

// view computes c's figures and signal severities as of T, with risk and
// value.
func (e *Engine) view(c *Customer, T int64) view {
	v := e.signals(c, T)
	e.score(c, &v)
	return v
}

// score fills in c's p_lapse, v's risk (from p_lapse and its severities)
// and c's value.
func (e *Engine) score(c *Customer, v *view) {
	v.pLapse, v.pAlive, v.hasP = e.PLapse(c, v.T, e.p.cfg.Lapse.HorizonDays)
	e.rescore(v)
	v.clv = e.clv(c)
	v.pct = e.percentile(c)
}

// signals computes c's figures and signal severities as of T; risk and
// value are left to score, which evaluate needs only when a reason is a
// candidate.
func (e *Engine) signals(c *Customer, T int64) view {
	cfg := &e.p.cfg
	v := view{T: T, day: window.Day(T), csat: -1, nps: -1}

	// Orders and the lapse.
	v.o = c.ordWin.Sums(v.day)
	v.g = e.gap(c)
	if c.lastOrder != 0 {
		v.lapseDue = c.lastOrder + v.g.ms
		v.sinceDays = float64(T-c.lastOrder) / float64(window.MsPerDay)
		if T >= v.lapseDue {
			over := float64(T-v.lapseDue) / float64(v.g.ms)
			v.sev[rLapse] = 0.5 + 0.5*min(over, 1)
		}
	}
	if v.o.NPrev90 >= int32(cfg.Spend.MinPrevOrders) && v.o.CPrev90 > 0 &&
		v.o.N90 >= int32(cfg.Spend.MinRecentOrders) && v.sev[rLapse] == 0 {
		drop := 1 - float64(max(v.o.C90, 0))/float64(v.o.CPrev90)
		// Spend per order must fall too: the sum alone moves with how
		// many orders the window happens to hold.
		aovDrop := 1 - (float64(max(v.o.C90, 0))/float64(v.o.N90))/(float64(v.o.CPrev90)/float64(v.o.NPrev90))
		if drop > cfg.Spend.MinDrop && aovDrop > cfg.Spend.MinOrderValueDrop {
			v.sev[rSpend] = min(drop, 1)
		}
	}

	// E-mail.
	v.m = c.mail.Window(v.day)
	v.base = c.mail.Baseline(v.day, e.decay)
	n := v.m.Deliveries()
	if n > 0 {
		v.openRate = min(float64(v.m.Opened)/float64(n), 1)
		v.clickRate = min(float64(v.m.Clicked)/float64(n), 1)
	}
	if v.base.Deliveries > 0 {
		v.openBase = min(v.base.Opens/v.base.Deliveries, 1)
		v.clickBase = min(v.base.Clicks/v.base.Deliveries, 1)
	}
	v.openP, v.clickP = 1, 1
	v.openS, v.openS0 = c.openCUSUM()
	g := &cfg.Engagement
	if c.flags&(flagUnsubscribed|flagHardBounced) == 0 && n >= g.MinDelivered30d && v.base.Deliveries >= g.MinBaselineDelivered {
		// The sequential test (cusum.go) must have alarmed, and the
		// 30-day window must show the drop too: below max_ratio of the
		// baseline (and, if max_p_value < 1, unlikely at the baseline
		// rate). Clicks count as opens; the click rate is evidence only.
		if v.openBase >= g.MinOpenBaseline && v.openRate < g.MaxRatio*v.openBase {
			v.openP = binomTail(min(v.m.Opened, n), n, v.openBase)
			if v.openP <= g.MaxPValue && v.openS >= g.CUSUMThreshold {
				v.sev[rEngagement] = 1 - v.openRate/v.openBase
			}
		}
		if v.clickBase >= g.MinClickBaseline && v.clickBase > 0 && v.clickRate < v.clickBase {
			v.clickP = binomTail(min(v.m.Clicked, n), n, v.clickBase)
		}
	}
	// Only what happened by T counts: a timer may look back at T after
	// later events of the customer were applied.
	within := func(day int32, days int32) bool { return v.day >= day && v.day-day < days }
	if c.flags&flagUnsubscribed != 0 && within(int32(c.unsubDay), e.p.channelDays) {
		v.sev[rUnsub] = 1
	}
	if c.flags&flagHardBounced != 0 && c.bounceDay[0] != 0 && within(int32(c.bounceDay[0])-1, e.p.channelDays) {
		v.sev[rBounce] = 1
	}

	// Support.
	if s := c.sup; s != nil {
		v.s = s.Sums(v.day)
		v.openTickets = s.OpenCount()
		v.pastSLA = s.PastSLA(T, e.p.sla)
		causes := 0
		if v.s.Opened30+v.s.Reopened30 >= cfg.Support.Tickets30d {
			causes++
		}
		if cfg.Support.ReopenFires && v.s.Reopened30 > 0 {
			causes++
		}
		if v.s.Complaint30 > 0 {
			causes++
		}
		if v.pastSLA > 0 {
			causes++
		}
		v.frictionCauses = causes
		if causes > 0 {
			v.sev[rFriction] = min(0.55+0.15*float64(causes-1), 1)
		}
		q := &cfg.Satisfaction
		if score, d, ok := s.CSAT(); ok {
			v.csat = score
			if int(score) <= q.MaxCSAT && within(d, e.p.satisfyDays) {
				v.sev[rLowSat] = 1 - 0.3*float64(score-1)/float64(max(q.MaxCSAT-1, 1))
			}
		}
		if score, d, ok := s.NPS(); ok {
			v.nps = score
			if int(score) <= q.MaxNPS && within(d, e.p.satisfyDays) {
				v.sev[rLowSat] = max(v.sev[rLowSat], 1-0.4*float64(score)/float64(max(q.MaxNPS, 1)))
			}
		}
	}

	return v
}

// binomTail returns P(X <= k) for X ~ Binomial(n, p).
func binomTail(k, n int, p float64) float64 {
	if p <= 0 {
		return 1
	}
	if p >= 1 {
		if k >= n {
			return 1
		}
		return 0
	}
	// Iterate the pmf from 0: pmf(i+1) = pmf(i) × (n−i)/(i+1) × p/(1−p).
	pmf := math.Pow(1-p, float64(n))
	sum := pmf
	for i := 0; i < k; i++ {
		pmf *= float64(n-i) / float64(i+1) * p / (1 - p)
		sum += pmf
	}
	return min(sum, 1)
}
