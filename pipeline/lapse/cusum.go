package lapse

import (
	"math"

	"github.com/winback/winback/pipeline/window"
)

// ENGAGEMENT_DECLINE's sequential test.
//
// A test of the 30-day rate repeated at every e-mail is not a 5% false-alarm
// rate: a steady 50% opener's window dips below half the baseline by chance
// many times a year. Instead each customer carries Page's CUSUM (Page 1954)
// of the log-likelihood ratio of "the open rate fell to alt_ratio × p0"
// against "the open rate is p0", per delivered e-mail:
//
//	S ← min(max(0, S + k·ln r + (d − k)·ln((1 − r·p0)/(1 − p0))), 2h)
//
// for a bucket of d deliveries and k opens, r = alt_ratio, h =
// cusum_threshold. A CUSUM is a sequence of Wald SPRTs restarted at 0
// (Wald 1945; Lorden 1971): at a steady rate p0 each restart reaches h with
// probability at most e^−h, so a false alarm takes at least e^h deliveries
// on average. docs/signals.md derives the false alarms per customer-year
// and TestCUSUMFalseAlarmRate checks them by simulation.
//
// p0 is the customer's baseline (decayed, without the last 30 days) less
// baseline_margin standard errors of its estimate, at most max_baseline,
// taken when a run starts (S leaves 0) and kept for the run. The margin
// covers the estimate's noise (the baseline rests on ~17 deliveries at two
// e-mails a week: a lucky stretch must not make ordinary misses look like
// a drop); the cap bounds the evidence one missed e-mail can give (at
// p0 = 0.9 it would be 2.1 nats, more than a quarter of the threshold);
// keeping p0 for the run stops the yardstick from sinking with the drop
// as the drop ages into the baseline.
//
// The statistic moves when a two-day e-mail bucket is complete (the first
// event of a later bucket arrives), with the bucket's counts: an open
// counts in the bucket of the open, so a late open is credited to the next
// bucket and the sum over buckets stays the per-delivery sum. Events that
// arrive after their bucket was folded still count in the windows, not in
// S. Clicks count as opens (a click implies one); the click rate is not
// tested on its own: at 0.3 × the open rate it carries a third of the
// evidence per e-mail and its baseline is three times noisier.

// cusumScale is the fixed-point scale of the stored statistic: 1/256 nat
// in a uint16.
const cusumScale = 256

// maxCUSUM is the largest stored statistic: 2 × the largest threshold
// Validate accepts (20 nats).
const maxCUSUM = 40 * cusumScale

// cusumFold moves c's statistic by e-mail bucket b, which is complete.
func (e *Engine) cusumFold(c *Customer, b int32) {
	s := c.mail.Bucket(b)
	d := s.Deliveries()
	if d == 0 && s.Opened == 0 {
		return
	}
	g := &e.p.cfg.Engagement
	base := c.mail.Baseline(b*window.EmailBucketDays+window.EmailBucketDays-1, e.decay)
	if c.flags&(flagUnsubscribed|flagHardBounced) != 0 || base.Deliveries < g.MinBaselineDelivered {
		c.engS, c.engP0 = 0, 0
		return
	}
	n := base.Deliveries
	rate := min(base.Opens/n, 1)
	if rate < g.MinOpenBaseline || rate <= 0 {
		// Too low to decline from: the test stops.
		c.engS, c.engP0 = 0, 0
		return
	}
	if c.engS == 0 || c.engP0 == 0 {
		z := g.BaselineMarginSE
		p0 := min((rate+z*z/(2*n)-z*math.Sqrt(rate*(1-rate)/n+z*z/(4*n*n)))/(1+z*z/n), g.MaxBaseline)
		c.engP0 = uint8(min(max(math.Round(p0*255), 1), 254))
	}
	v := cusumLLR(float64(c.engS)/cusumScale, s.Opened, d, float64(c.engP0)/255, g.AltRatio, g.CUSUMThreshold)
	c.engS = uint16(math.Round(v * cusumScale))
	if c.engS == 0 {
		c.engP0 = 0
	}
}

// cusumLLR is one CUSUM step: s plus the log-likelihood ratio of k
// successes and max(d−k, 0) failures under rate r·p0 against rate p0,
// floored at 0 and capped at 2h (so that a recovery shows within about as
// many e-mails as the alarm took).
func cusumLLR(s float64, k, d int, p0, r, h float64) float64 {
	s += float64(k)*math.Log(r) + float64(max(d-k, 0))*math.Log((1-r*p0)/(1-p0))
	return min(max(s, 0), 2*h)
}

// openCUSUM returns c's statistic in nats and the rate its run tests
// against (0 if no run).
func (c *Customer) openCUSUM() (s, p0 float64) {
	return float64(c.engS) / cusumScale, float64(c.engP0) / 255
}
