package btyd

import (
	"errors"
	"fmt"
	"math"
)

// Kind selects the model variant.
type Kind uint8

const (
	// BGNBD is the BG/NBD model: drop-out only after a repeat purchase.
	BGNBD Kind = iota
	// MBGNBD is the modified BG/NBD: drop-out after any purchase, the first
	// included, so a one-time buyer is not alive for certain. With K > 1 it
	// is MBG/CNBD-k (Reutterer, Platzer & Schröder 2021): the same drop-out
	// with Erlang-K intervals between purchases, so a regular buyer's
	// silence weighs more than a Poisson buyer's.
	MBGNBD
)

func (k Kind) String() string {
	if k == MBGNBD {
		return "MBG/NBD"
	}
	return "BG/NBD"
}

// MarshalText names the kind: "BG/NBD" or "MBG/NBD".
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText reads what MarshalText writes.
func (k *Kind) UnmarshalText(b []byte) error {
	switch string(b) {
	case "BG/NBD":
		*k = BGNBD
	case "MBG/NBD":
		*k = MBGNBD
	default:
		return fmt.Errorf("btyd: unknown model %q", b)
	}
	return nil
}

// Params are a fitted model's population parameters; times are in days.
type Params struct {
	Kind  Kind    `json:"model"`
	R     float64 `json:"r"`     // shape of the purchase-rate distribution
	Alpha float64 `json:"alpha"` // scale (days) of the purchase-rate distribution (λ ~ Gamma(r, α))
	A     float64 `json:"a"`     // drop-out Beta(a, b)
	B     float64 `json:"b"`
	// K is the regularity of MBG/CNBD-k: the intervals between purchases
	// are Erlang-K (K = 1: Poisson purchasing, i.e. plain MBG/NBD). BG/NBD
	// ignores it.
	K int `json:"k,omitempty"`
}

// Valid reports whether every parameter is finite and positive.
func (p Params) Valid() bool {
	for _, v := range [...]float64{p.R, p.Alpha, p.A, p.B} {
		if !(v > 0) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}

func (p Params) String() string {
	name := p.Kind.String()
	if p.Kind == MBGNBD && p.k() > 1 {
		name = fmt.Sprintf("MBG/CNBD-%d", p.k())
	}
	return fmt.Sprintf("%s r=%.4g alpha=%.4g a=%.4g b=%.4g", name, p.R, p.Alpha, p.A, p.B)
}

// Obs is one customer's sufficient statistics: X repeat purchases (purchase
// occasions after the first), the last at Tx days after the first, observed
// for T days since the first (0 ≤ Tx ≤ T; Tx = 0 when X = 0). LogIv is the
// sum of the logs of the X intervals (days; only MBG/CNBD-k with K > 1
// reads it, to tell regular from irregular buyers). N weighs the
// observation (the number of customers sharing it; 0 counts as 1). K, if
// set, is this customer's own regularity for MBG/CNBD-k (Params.K
// otherwise); score such a customer with its K in Params too.
type Obs struct {
	X, Tx, T float64
	LogIv    float64
	N        float64
	K        int
}

// ErrNoData is returned by Fit when there is nothing to fit.
var ErrNoData = errors.New("btyd: no observations with T > 0")

// LogLik returns the log-likelihood of one observation under p.
func (p Params) LogLik(o Obs) float64 {
	if p.Kind == MBGNBD && o.K > 0 {
		p.K = o.K
	}
	return p.logLikX(o.X) + p.logLikRest(o)
}

// logLikX is the part of LogLik that depends on the observation only
// through x (and the regularity p.K): Fit computes it once per distinct x.
func (p Params) logLikX(x float64) float64 {
	r, al, a, b := p.R, p.Alpha, p.A, p.B
	lg := func(v float64) float64 { l, _ := math.Lgamma(v); return l }
	if p.Kind == MBGNBD {
		k := float64(p.k())
		al /= k // the stage rate kλ is Gamma(r, α/k)
		c := lg(a+b) + lg(b+x) - lg(b) - lg(a+b+x+1) + lg(r+k*x) - lg(r) + r*math.Log(al)
		if k > 1 {
			c -= x * lg(k)
		}
		return c
	}
	return lg(r+x) - lg(r) + r*math.Log(al) + lg(a+b) + lg(b+x) - lg(b) - lg(a+b+x)
}

// logLikRest is LogLik less logLikX (p.K already o's regularity).
func (p Params) logLikRest(o Obs) float64 {
	r, al, a, b, x := p.R, p.Alpha, p.A, p.B, o.X
	if p.Kind == MBGNBD {
		k := float64(p.k())
		al /= k
		rr := r + k*x
		var c float64
		if k > 1 {
			c = (k - 1) * o.LogIv
		}
		dead := math.Log(a) - rr*math.Log(al+o.Tx)
		alive := math.Log(b+x) - rr*math.Log(al+o.Tx) + p.logSurvival(rr, al+o.Tx, o.T-o.Tx)
		return c + logAddExp(dead, alive)
	}
	a3 := -(r + x) * math.Log(al+o.T)
	if x <= 0 {
		return a3
	}
	a4 := math.Log(a) - math.Log(b+x-1) - (r+x)*math.Log(al+o.Tx)
	return logAddExp(a3, a4)
}

func logAddExp(u, v float64) float64 {
	if u < v {
		u, v = v, u
	}
	return u + math.Log1p(math.Exp(v-u))
}

func (p Params) k() int { return max(p.K, 1) }

// logSurvival is the log of the probability that an interval under way
// lasts beyond u more days, with R stages' worth of rate evidence
// accumulated over A days (the stage rate θ is Gamma(R, A)): log E[Q(K,
// θu)] = log Σ_{i<K} u^i/i! Γ(R+i)/Γ(R) A^R/(A+u)^(R+i).
func (p Params) logSurvival(R, A, u float64) float64 {
	if u == 0 {
		return 0 // what the sum below gives (R·0; only the first term), without its logarithms
	}
	k := p.k()
	if p.Kind != MBGNBD {
		k = 1
	}
	base := R * (math.Log(A) - math.Log(A+u))
	if k == 1 || u <= 0 {
		return base
	}
	// term_i / term_(i-1) = u (R+i-1) / (i (A+u))
	l := base
	sum := 0.0 // log-sum-exp accumulator, relative to base
	t := 1.0
	for i := 1; i < k; i++ {
		t *= u * (R + float64(i) - 1) / (float64(i) * (A + u))
		sum += t
	}
	return l + math.Log1p(sum)
}

// PAlive is the probability that a customer with statistics (x, tx, T) is
// still alive at T.
func (p Params) PAlive(x, tx, T float64) float64 {
	if p.Kind != MBGNBD {
		if x <= 0 {
			return 1
		}
		odds := p.A / (p.B + x - 1)
		lr := (p.R + x) * (math.Log(p.Alpha+T) - math.Log(p.Alpha+tx))
		return 1 / (1 + odds*math.Exp(lr))
	}
	k := float64(p.k())
	rr := p.R + k*x
	odds := p.A / (p.B + x)
	return 1 / (1 + odds*math.Exp(-p.logSurvival(rr, p.Alpha/k+tx, T-tx)))
}

// PNoPurchase is the probability that a customer with statistics (x, tx, T)
// makes no purchase in the next h days: dead, or alive and silent (the
// models drop customers out only right after a purchase, so a silent
// customer alive at T is alive throughout).
func (p Params) PNoPurchase(x, tx, T, h float64) float64 {
	alive := p.PAlive(x, tx, T)
	var silent float64
	if p.Kind != MBGNBD {
		silent = math.Exp((p.R + x) * (math.Log(p.Alpha+T) - math.Log(p.Alpha+T+h)))
	} else {
		k := float64(p.k())
		rr := p.R + k*x
		silent = math.Exp(p.logSurvival(rr, p.Alpha/k+tx, T-tx+h) - p.logSurvival(rr, p.Alpha/k+tx, T-tx))
	}
	return min(max(1-alive*(1-silent), 0), 1)
}

// PNoPurchaseDormant is PNoPurchase and PAlive for a model in which
// dropping out is not final: a customer who drops out goes dormant and
// buys at kappa times its old rate (0 <= kappa < 1; anything else but
// NaN is clamped into it, NaN counts as 0). It returns the probability of
// no purchase in the next h days and the probability that the customer
// is still active (not dormant) at T.
//
// Only the spell since the last purchase may be dormant: the x purchases
// are an active customer's. A dormant customer's silence since its last
// purchase weighs kappa as much as an active one's, so a frequent buyer's
// long silence no longer proves it gone for good; and a dormant customer
// may buy again, at the rate its history gives, times kappa. The
// parameters are the model's own fit (kappa plays no part in it). With
// kappa 0 dormancy is death and the pair is PNoPurchase and PAlive bit
// for bit; MBG/NBD (K = 1), the model behind p_lapse, shares their
// logarithms (three where the two calls take eight). Other models (BG/NBD,
// K > 1) have no dormancy here: they make the two calls.
func (p Params) PNoPurchaseDormant(x, tx, T, h, kappa float64) (pNo, active float64) {
	if p.Kind != MBGNBD || p.k() != 1 {
		return p.PNoPurchase(x, tx, T, h), p.PAlive(x, tx, T)
	}
	if !(kappa > 0) {
		kappa = 0
	}
	kappa = min(kappa, 0.999)
	// logSurvival(rr, A, u) with K = 1 is rr·(log A − log(A+u)).
	rr := p.R + x
	A := p.Alpha/1 + tx
	// A dormant customer's exposure since its last purchase: kappa of
	// the silence (tx alone if dormancy is death).
	D := A + kappa*(T-tx)
	lD, l1, l2 := math.Log(D), math.Log(A+(T-tx)), math.Log(A+(T-tx+h))
	odds := p.A / (p.B + x)
	ls := rr * (lD - l1)
	active = 1 / (1 + odds*math.Exp(-ls))
	silent := math.Exp(rr*(lD-l2) - ls)
	pNo = 1 - active*(1-silent)
	if kappa > 0 {
		pNo -= (1 - active) * -math.Expm1(rr*(lD-math.Log(D+kappa*h)))
	}
	return min(max(pNo, 0), 1), active
}

// ExpectedPurchases is the expected number of purchases in the next h days
// of a customer with statistics (x, tx, T), approximated by P(alive) × the
// posterior mean rate × h, discounted for drop-out after each of those
// purchases: the posterior purchase rate is (r + K·x) / (α + K·T) and a
// purchase is survived with probability (b+x)/(a+b+x).
func (p Params) ExpectedPurchases(x, tx, T, h float64) float64 {
	alive := p.PAlive(x, tx, T)
	k := 1.0
	if p.Kind == MBGNBD {
		k = float64(p.k())
	}
	rate := (p.R + k*x) / (p.Alpha + k*T)
	n := rate * h
	// Geometric drop-out: expected purchases before dying, capped by n.
	q := p.A / (p.A + p.B + x)
	if q > 0 && n > 0 {
		n = (1 - math.Pow(1-q, n)) / q
	}
	return alive * n
}

// SilenceForPAlive returns the silence (days since the last purchase) at
// which the P(alive) of a customer with x repeat purchases, the last tx
// days after the first, falls to theta (0 < theta < 1): 0 if it is
// already at or below theta right after the purchase, +Inf if it never
// falls that low (a BG/NBD one-time buyer, or beyond 1e7 days). It is
// SilenceFromGrowth(SilenceGrowth(x, theta), tx).
func (p Params) SilenceForPAlive(x, tx, theta float64) float64 {
	return p.SilenceFromGrowth(p.SilenceGrowth(x, theta), tx)
}

// SilenceFromGrowth returns the silence of a customer whose last purchase
// was tx days after the first, from g = SilenceGrowth(x, theta): g times
// the rate evidence's scale in days (α/K + tx).
func (p Params) SilenceFromGrowth(g, tx float64) float64 {
	if g == 0 || math.IsInf(g, 1) {
		return g
	}
	if p.Kind != MBGNBD || p.k() == 1 {
		return (p.Alpha + tx) * g
	}
	if s := (p.Alpha/float64(p.k()) + tx) * g; s <= 1e7 {
		return s
	}
	return math.Inf(1)
}

// SilenceGrowth returns the part of SilenceForPAlive that does not depend
// on tx: the silence over the rate evidence's scale (α/K + tx days), at
// which P(alive) falls to theta; 0 for none, +Inf for never. The survival
// of a silence s depends on it only through s/(α/K + tx), so a caller may
// keep it per (x, K) for as long as the parameters stay. Closed form for
// BG/NBD and MBG/NBD (K = 1), Newton's method otherwise.
func (p Params) SilenceGrowth(x, theta float64) float64 {
	if !(theta > 0 && theta < 1) {
		return math.Inf(1)
	}
	var odds float64
	switch {
	case p.Kind != MBGNBD && x <= 0:
		return math.Inf(1)
	case p.Kind != MBGNBD:
		odds = p.A / (p.B + x - 1)
	default:
		odds = p.A / (p.B + x)
	}
	// P(alive) = 1 / (1 + odds / S(s)) ≤ theta ⇔ S(s) ≤ odds·theta/(1−theta).
	target := odds * theta / (1 - theta)
	if target >= 1 {
		return 0
	}
	if p.Kind != MBGNBD || p.k() == 1 {
		// S(s) = ((α+tx)/(α+tx+s))^(r+x)
		return math.Pow(target, -1/(p.R+x)) - 1
	}
	k := float64(p.k())
	rr := p.R + k*x
	lt := math.Log(target)
	// In w = log((A+s)/A) and z = s/(A+s) = 1 − e^(−w) (A = α/K + tx)
	// the survival is log S = −rr·w + log P(z), P(z) = Σ_{i<K}
	// Γ(rr+i)/(Γ(rr) i!) z^i: flat at first (an Erlang-K silence is
	// unremarkable until about the usual interval), then a line of slope
	// −rr bent by a slowly growing term, and concave throughout. Newton's
	// method on f(w) = log S − lt from the later of the Poisson root
	// −lt/rr (where f ≥ 0, as P ≥ 1) and the usual interval steps past
	// the root at most once (concavity) and then falls back onto it
	// monotonically: five to seven evaluations. The bracket [lo, hi]
	// guards it.
	kk := p.k()
	var buf [33]float64
	c := buf[:0]
	if kk > len(buf) {
		c = make([]float64, 0, kk)
	}
	c = append(c, 1)
	for i := 1; i < kk; i++ {
		c = append(c, c[i-1]*(rr+float64(i)-1)/float64(i))
	}
	f := func(w float64) (float64, float64) {
		z := -math.Expm1(-w)
		pz, dp := c[kk-1], 0.0
		for i := kk - 2; i >= 0; i-- {
			dp = dp*z + pz
			pz = pz*z + c[i]
		}
		return -rr*w + math.Log(pz) - lt, -rr + (1-z)*dp/pz
	}
	const wmax = 700 // e^700: never
	lo, hi := 0.0, math.Inf(1)
	w := min(max(-lt/rr, math.Log1p(k/rr)), wmax)
	for range 100 {
		fw, dw := f(w)
		switch {
		case fw > 0:
			lo = w
		case fw < 0:
			hi = w
		default:
			return math.Expm1(w)
		}
		if lo >= wmax {
			return math.Inf(1)
		}
		next := w - fw/dw
		switch {
		case math.IsInf(hi, 1):
			if !(next > lo && next < wmax) { // flat: f' ≈ 0
				next = wmax
			}
		case !(next > lo && next < hi):
			next = (lo + hi) / 2
		}
		if math.Abs(next-w) <= 1e-12*w {
			w = next
			break
		}
		w = next
	}
	return math.Expm1(w)
}
