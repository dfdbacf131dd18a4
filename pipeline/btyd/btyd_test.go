package btyd

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// gammaRand draws Gamma(shape, 1) (Marsaglia & Tsang; shape < 1 boosted).
func gammaRand(r *rand.Rand, shape float64) float64 {
	if shape < 1 {
		return gammaRand(r, shape+1) * math.Pow(r.Float64(), 1/shape)
	}
	d := shape - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := r.NormFloat64()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := r.Float64()
		if math.Log(u) < 0.5*x*x+d-d*v+d*math.Log(v) {
			return d * v
		}
	}
}

// simulate draws n customers from p, each observed for T days from its
// first purchase, with Erlang-K intervals (K = 1: Poisson).
func simulate(p Params, n int, T float64, seed uint64) []Obs {
	r := rand.New(rand.NewPCG(seed, 1))
	k := max(p.K, 1)
	out := make([]Obs, n)
	for i := range out {
		theta := float64(k) * gammaRand(r, p.R) / p.Alpha // stage rate kλ (per day)
		ga, gb := gammaRand(r, p.A), gammaRand(r, p.B)
		drop := ga / (ga + gb)
		o := Obs{T: T}
		t := 0.0
		alive := p.Kind != MBGNBD || r.Float64() >= drop // MBG: may drop after the first purchase
		for alive {
			iv := 0.0
			for range k {
				iv += r.ExpFloat64() / theta
			}
			if t+iv > T {
				break
			}
			t += iv
			o.X++
			o.Tx = t
			o.LogIv += math.Log(iv)
			alive = r.Float64() >= drop
		}
		out[i] = o
	}
	return out
}

func near(t *testing.T, what string, got, want, rel float64) {
	t.Helper()
	if math.Abs(got-want) > rel*want {
		t.Errorf("%s = %.4g, want %.4g ± %.0f%%", what, got, want, 100*rel)
	}
}

// TestFitRecoversCDNOW draws a population from the BG/NBD parameters
// published for CDNOW (Fader, Hardie & Lee 2005: r = 0.243, α = 4.414
// weeks, a = 0.793, b = 2.426; here in days, α × 7) and fits them back.
func TestFitRecoversCDNOW(t *testing.T) {
	want := Params{Kind: BGNBD, R: 0.243, Alpha: 4.414 * 7, A: 0.793, B: 2.426}
	obs := simulate(want, 20000, 39*7, 1)
	got, err := Fit(BGNBD, obs, Params{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fitted %v (true %v)", got, want)
	near(t, "r", got.R, want.R, 0.1)
	near(t, "alpha", got.Alpha, want.Alpha, 0.15)
	near(t, "a", got.A, want.A, 0.3)
	near(t, "b", got.B, want.B, 0.35)
	// The true parameters fit no better than the fitted ones.
	if lt, lf := want.LogLikelihood(obs), got.LogLikelihood(obs); lf < lt-1e-6 {
		t.Errorf("fitted log-likelihood %.3f below the true parameters' %.3f", lf, lt)
	}
}

// TestFitKRecoversRegularity draws MBG/CNBD-2 customers and expects FitK
// to pick K = 2 and recover the parameters.
func TestFitKRecoversRegularity(t *testing.T) {
	want := Params{Kind: MBGNBD, R: 2, Alpha: 40, A: 0.6, B: 3, K: 2}
	obs := simulate(want, 4000, 365, 2)
	got, err := FitK(obs, 3, Params{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fitted %v (true %v)", got, want)
	if got.K != 2 {
		t.Fatalf("K = %d, want 2", got.K)
	}
	near(t, "r", got.R, want.R, 0.2)
	near(t, "alpha", got.Alpha, want.Alpha, 0.2)
	near(t, "a", got.A, want.A, 0.35)
	near(t, "b", got.B, want.B, 0.4)
}

func TestOneTimeBuyers(t *testing.T) {
	bg := Params{Kind: BGNBD, R: 0.5, Alpha: 30, A: 1, B: 4}
	mbg := bg
	mbg.Kind = MBGNBD
	if got := bg.PAlive(0, 0, 300); got != 1 {
		t.Fatalf("BG/NBD P(alive) of a one-time buyer = %v, want 1 (the known flaw)", got)
	}
	young, old := mbg.PAlive(0, 0, 10), mbg.PAlive(0, 0, 300)
	if !(old < young && young < 1) {
		t.Fatalf("MBG/NBD one-time buyer P(alive) at 10 days %v, at 300 days %v: want falling below 1", young, old)
	}
}

func TestProbabilitiesBehave(t *testing.T) {
	for _, p := range []Params{
		{Kind: BGNBD, R: 0.35, Alpha: 18, A: 0.5, B: 3.7},
		{Kind: MBGNBD, R: 1.26, Alpha: 42, A: 0.37, B: 0.72},
		{Kind: MBGNBD, R: 1.3, Alpha: 20, A: 0.43, B: 0.8, K: 3},
	} {
		prev := -1.0
		for T := 50.0; T <= 400; T += 50 { // longer silence: more likely gone
			q := p.PNoPurchase(5, 40, T, 90)
			if q < 0 || q > 1 || q < prev {
				t.Fatalf("%v: PNoPurchase(5, 40, %v, 90) = %v after %v", p, T, q, prev)
			}
			prev = q
		}
		if a, b := p.PNoPurchase(5, 40, 100, 30), p.PNoPurchase(5, 40, 100, 300); !(b < a) {
			t.Fatalf("%v: a longer horizon is not less likely silent: %v vs %v", p, a, b)
		}
		if e := p.ExpectedPurchases(10, 300, 310, 365); !(e > 0 && e < 50) {
			t.Fatalf("%v: ExpectedPurchases = %v", p, e)
		}
	}
}

// With K = 1 MBG/CNBD-k is MBG/NBD, whose likelihood has the closed form
// of Batislam et al. (2007).
func TestMBGClosedForm(t *testing.T) {
	p := Params{Kind: MBGNBD, R: 0.8, Alpha: 25, A: 0.7, B: 2.5}
	lg := func(v float64) float64 { l, _ := math.Lgamma(v); return l }
	for _, o := range []Obs{{X: 0, Tx: 0, T: 100}, {X: 3, Tx: 60, T: 200}, {X: 12, Tx: 330, T: 340, LogIv: 30}} {
		r, al, a, b, x := p.R, p.Alpha, p.A, p.B, o.X
		A := lg(r+x) - lg(r) + r*math.Log(al)
		lb := func(u, v float64) float64 { return lg(u) + lg(v) - lg(u+v) }
		want := A + math.Log(math.Exp(lb(a, b+x+1)-lb(a, b)-(r+x)*math.Log(al+o.T))+math.Exp(lb(a+1, b+x)-lb(a, b)-(r+x)*math.Log(al+o.Tx)))
		if got := p.LogLik(o); math.Abs(got-want) > 1e-9 {
			t.Fatalf("LogLik(%+v) = %v, want %v", o, got, want)
		}
	}
}

func TestSilenceForPAlive(t *testing.T) {
	for _, p := range []Params{
		{Kind: BGNBD, R: 0.35, Alpha: 18, A: 0.5, B: 3.7},
		{Kind: MBGNBD, R: 1.26, Alpha: 42, A: 0.37, B: 0.72},
		{Kind: MBGNBD, R: 1.3, Alpha: 20, A: 0.43, B: 0.8, K: 3},
		{Kind: MBGNBD, R: 0.6, Alpha: 35, A: 0.3, B: 2.5, K: 16},
		{Kind: MBGNBD, R: 0.5, Alpha: 30, A: 1, B: 4, K: 16}, // a weekly buyer's silence is flat at first
		{Kind: MBGNBD, R: 4, Alpha: 10, A: 0.05, B: 9, K: 32},
	} {
		for _, c := range []struct{ x, tx float64 }{{0, 0}, {1, 30}, {7, 49}, {20, 300}, {150, 360}} {
			for _, theta := range []float64{0.3, 0.5, 0.8} {
				s := p.SilenceForPAlive(c.x, c.tx, theta)
				if p.Kind == BGNBD && c.x == 0 {
					continue // never falls (below)
				}
				if math.IsInf(s, 0) || math.IsNaN(s) {
					t.Errorf("%v x=%v tx=%v theta=%v: silence %v", p, c.x, c.tx, theta, s)
					continue
				}
				if s == 0 {
					if a := p.PAlive(c.x, c.tx, c.tx); a > theta+1e-9 {
						t.Errorf("%v x=%v: silence 0 but P(alive) right after the purchase %v > %v", p, c.x, a, theta)
					}
					continue
				}
				if a := p.PAlive(c.x, c.tx, c.tx+s); math.Abs(a-theta) > 1e-9 {
					t.Errorf("%v x=%v tx=%v theta=%v: P(alive) after %v days = %v", p, c.x, c.tx, theta, s, a)
				}
			}
		}
	}
	if s := (Params{Kind: BGNBD, R: 1, Alpha: 1, A: 1, B: 1}).SilenceForPAlive(0, 0, 0.5); !math.IsInf(s, 1) {
		t.Errorf("BG/NBD one-time buyer: %v, want +Inf", s)
	}
}

// BenchmarkSilenceForPAlive: the lapse timer's model gap, asked at every
// event of a customer (K = 1: closed form; K > 1: root finding).
func BenchmarkSilenceForPAlive(b *testing.B) {
	for _, k := range []int{1, 4, 16} {
		p := Params{Kind: MBGNBD, R: 1.26, Alpha: 42, A: 0.37, B: 0.72, K: k}
		b.Run(fmt.Sprintf("K=%d", k), func(b *testing.B) {
			s := 0.0
			for i := range b.N {
				s += p.SilenceForPAlive(float64(5+i%20), 100, 0.5)
			}
			if !(s > 0) {
				b.Fatal(s)
			}
		})
	}
}

// TestFitWithPrior: on a population where nobody drops out, maximum
// likelihood has no interior optimum (it drives a toward 0, as far as the
// simplex goes before the likelihood is flat); with the prior a stays at
// a plausible value, the mean purchase rate is the data's, the fit ends
// within its cap, and it reports the log-likelihood of the parameters it
// returns.
func TestFitWithPrior(t *testing.T) {
	steady := Params{Kind: MBGNBD, R: 4, Alpha: 28, A: 1e-4, B: 1000} // about weekly, nobody drops out
	obs := simulate(steady, 1000, 365, 3)
	opt := FitOptions{MaxIter: 400, Step: 0.5, Tol: 1e-8}
	free, fs, err := FitWith(MBGNBD, obs, Params{}, opt)
	if err != nil {
		t.Fatal(err)
	}
	opt.PriorSD = 2
	p, st, err := FitWith(MBGNBD, obs, Params{}, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("without prior %v (%d evaluations), with %v (%d)", free, fs.Evals, p, st.Evals)
	if !(free.A < 1e-4) {
		t.Errorf("without the prior the fit stayed finite (%v): the population does not test the prior", free)
	}
	if !(p.A > 1e-4 && p.B < 1e5 && p.R < 40) || st.Iter >= opt.MaxIter {
		t.Errorf("with the prior: %v after %d iterations, %d evaluations (without: %d)", p, st.Iter, st.Evals, fs.Evals)
	}
	if ll := p.LogLikelihood(obs); math.Abs(ll-st.LL) > 1e-9*math.Abs(ll) {
		t.Errorf("FitStats.LL %v, LogLikelihood %v", st.LL, ll)
	}
	// Mean rate r/α stays that of the data: a purchase a week.
	if m := p.R / p.Alpha; math.Abs(m-1.0/7) > 0.02 {
		t.Errorf("mean rate %.4f per day, want about 1/7", m)
	}
}

// TestPNoPurchaseDormant: with kappa 0 the pair is what PNoPurchase and
// PAlive give, bit for bit; with kappa > 0 it is the model's posterior,
// integrated over the purchase rate numerically.
func TestPNoPurchaseDormant(t *testing.T) {
	cases := [][3]float64{{0, 0, 0}, {0, 0, 40}, {3, 20.5, 20.5}, {7, 49.25, 130.125}, {40, 300, 365}, {5, 60, 300}}
	for _, p := range []Params{
		{Kind: MBGNBD, R: 1.26, Alpha: 42, A: 0.37, B: 0.72},
		{Kind: MBGNBD, R: 0.5, Alpha: 30, A: 1, B: 4},
		{Kind: MBGNBD, R: 1.3, Alpha: 20, A: 0.43, B: 0.8, K: 3},
		{Kind: BGNBD, R: 0.35, Alpha: 18, A: 0.5, B: 3.7},
	} {
		for _, c := range cases {
			for _, h := range []float64{0, 30, 90} {
				no, alive := p.PNoPurchaseDormant(c[0], c[1], c[2], h, 0)
				wantNo, wantAlive := p.PNoPurchase(c[0], c[1], c[2], h), p.PAlive(c[0], c[1], c[2])
				if math.Float64bits(no) != math.Float64bits(wantNo) || math.Float64bits(alive) != math.Float64bits(wantAlive) {
					t.Errorf("%v %v h=%v: (%v, %v), want (%v, %v)", p, c, h, no, alive, wantNo, wantAlive)
				}
			}
		}
	}
	// A rate out of range is clamped: NaN and below 0 are 0.
	p0 := Params{Kind: MBGNBD, R: 1.26, Alpha: 42, A: 0.37, B: 0.72}
	for _, kappa := range []float64{-1, math.NaN(), math.Inf(-1)} {
		no, alive := p0.PNoPurchaseDormant(5, 60, 300, 90, kappa)
		if wantNo, wantAlive := p0.PNoPurchaseDormant(5, 60, 300, 90, 0); no != wantNo || alive != wantAlive {
			t.Errorf("kappa %v: (%v, %v), want kappa 0's (%v, %v)", kappa, no, alive, wantNo, wantAlive)
		}
	}
	if no, alive := p0.PNoPurchaseDormant(5, 60, 300, 90, math.Inf(1)); !(no >= 0 && no <= 1 && alive > 0 && alive <= 1) {
		t.Errorf("kappa +Inf: (%v, %v)", no, alive)
	}

	// Dormancy: the customer drops out right after a purchase (or the
	// first) with probability p ~ Beta(a, b) and then buys at kappa·λ,
	// λ ~ Gamma(r, α). Given x repeats, the last at tx, and silence up to
	// T, weigh the two states by their likelihood and integrate over λ by
	// the trapezoidal rule.
	p := Params{Kind: MBGNBD, R: 1.26, Alpha: 42, A: 0.37, B: 0.72}
	for _, c := range cases {
		x, tx, T, h := c[0], c[1], c[2], 90.0
		for _, kappa := range []float64{0.01, 0.1, 0.5} {
			// E[(1-p)^(x+1)] and E[p(1-p)^x] under Beta(a, b), up to B(a, b).
			lbeta := func(a, b float64) float64 { return lgamma(a) + lgamma(b) - lgamma(a+b) }
			wActive := math.Exp(lbeta(p.A, p.B+x+1))
			wDormant := math.Exp(lbeta(p.A+1, p.B+x))
			var active, dormant, activeNo, dormantNo float64
			// Over u = log λ (dλ = λ du), which keeps λ^(r+x-1) near 0 smooth.
			const n = 100000
			top := math.Log(60 * (p.R + x) / (p.Alpha + tx)) // far into the posterior's tail
			for i := 0; i <= n; i++ {
				u := top - 50*float64(n-i)/n
				l := math.Exp(u)
				w := 1.0
				if i == 0 || i == n {
					w = 0.5
				}
				// The Gamma(r, α) density's λ-dependent part, times λ^x and λ.
				g := w * math.Exp((p.R+x)*u-p.Alpha*l)
				a := wActive * g * math.Exp(-l*T)
				d := wDormant * g * math.Exp(-l*(tx+kappa*(T-tx)))
				active += a
				dormant += d
				activeNo += a * math.Exp(-l*h)
				dormantNo += d * math.Exp(-kappa*l*h)
			}
			wantAlive := active / (active + dormant)
			wantNo := (activeNo + dormantNo) / (active + dormant)
			no, alive := p.PNoPurchaseDormant(x, tx, T, h, kappa)
			if math.Abs(alive-wantAlive) > 1e-6 || math.Abs(no-wantNo) > 1e-6 {
				t.Errorf("kappa %v %v: (%.8f, %.8f), integrated (%.8f, %.8f)", kappa, c, no, alive, wantNo, wantAlive)
			}
			// Dormancy is not death: the customer is likelier active and
			// likelier to buy than MBG/NBD says.
			no0, alive0 := p.PNoPurchaseDormant(x, tx, T, h, 0)
			if alive < alive0 || no > no0 {
				t.Errorf("kappa %v %v: (%v, %v), with death (%v, %v)", kappa, c, no, alive, no0, alive0)
			}
		}
	}
}
