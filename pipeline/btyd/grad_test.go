package btyd

import (
	"fmt"
	"math"
	"testing"
)

// TestMBGGradient compares the analytic gradient of the MBG/NBD objective
// with central differences of its value, and its value with LogLik.
func TestMBGGradient(t *testing.T) {
	obs := simulate(Params{Kind: MBGNBD, R: 1.3, Alpha: 35, A: 0.5, B: 2.5}, 500, 300, 4)
	for i := range obs {
		obs[i].N = 1
	}
	data := compact(obs)
	prior := [4]float64{0.1, 3, -0.2, 1}
	for _, v := range [][4]float64{{0, 3, 0, 1}, {0.5, 4, -1, 0.3}, {-1, 2, 1, 2}} {
		for _, sd := range []float64{0, 2} {
			f, g, ll := mbgObjective(data, v, prior, sd)
			p := Params{Kind: MBGNBD, R: math.Exp(v[0]), Alpha: math.Exp(v[1]), A: math.Exp(v[2]), B: math.Exp(v[3])}
			if want := p.LogLikelihood(data); math.Abs(ll-want) > 1e-9*math.Abs(want) {
				t.Errorf("v=%v: log-likelihood %v, LogLikelihood %v", v, ll, want)
			}
			if sd == 0 && f != -ll {
				t.Errorf("v=%v: objective %v without a prior, want −LL %v", v, f, -ll)
			}
			for i := range v {
				const h = 1e-5
				up, dn := v, v
				up[i] += h
				dn[i] -= h
				fu, _, _ := mbgObjective(data, up, prior, sd)
				fd, _, _ := mbgObjective(data, dn, prior, sd)
				num := (fu - fd) / (2 * h)
				if math.Abs(g[i]-num) > 1e-5*(math.Abs(num)+1) {
					t.Errorf("v=%v sd=%v: ∂f/∂v%d = %v, central difference %v", v, sd, i, g[i], num)
				}
			}
		}
	}
}

func TestDigamma(t *testing.T) {
	const euler = 0.57721566490153286
	for _, c := range []struct{ v, want float64 }{
		{1, -euler},
		{0.5, -euler - 2*math.Ln2},
		{2, 1 - euler},
		{10, 2.251752589066721},
		{1e-3, -1000.5755719318103},
	} {
		if got := digamma(c.v); math.Abs(got-c.want) > 1e-11*max(1, math.Abs(c.want)) {
			t.Errorf("digamma(%v) = %.15g, want %.15g", c.v, got, c.want)
		}
	}
}

// TestGradientFitMatchesSimplex fits MBG/NBD populations with the
// gradient fit and with the two simplex rounds it replaced: the gradient
// fit's log-likelihood is never lower (to 1e-6), its parameters agree,
// and it takes a fraction of the evaluations.
func TestGradientFitMatchesSimplex(t *testing.T) {
	for i, want := range []Params{
		{Kind: MBGNBD, R: 0.8, Alpha: 25, A: 0.7, B: 2.5},
		{Kind: MBGNBD, R: 2, Alpha: 60, A: 0.3, B: 5},
		{Kind: MBGNBD, R: 4, Alpha: 28, A: 1e-3, B: 200}, // nobody drops out: the prior holds the fit
	} {
		obs := simulate(want, 3000, 365, uint64(10+i))
		for i := range obs {
			obs[i].N = 1
		}
		for _, opt := range []FitOptions{{}, {MaxIter: 200, Step: 0.5, Tol: 1e-8, PriorSD: 2}} {
			if want.A < 0.01 && opt.PriorSD == 0 {
				continue // no maximum to agree on
			}
			got, st, err := FitWith(MBGNBD, obs, Params{}, opt)
			if err != nil {
				t.Fatal(err)
			}
			ref, rst := simplexFit(t, obs, opt)
			t.Logf("%v: gradient %v (%d evaluations), simplex %v (%d)", want, got, st.Evals, ref, rst.Evals)
			if st.LL < rst.LL-1e-6*math.Abs(rst.LL) && opt.PriorSD == 0 {
				t.Errorf("%v: gradient fit LL %v below the simplex's %v", want, st.LL, rst.LL)
			}
			// The objective (the likelihood with the prior) is never worse.
			def := DefaultParams(MBGNBD)
			prior := [4]float64{math.Log(def.R), math.Log(def.Alpha), math.Log(def.A), math.Log(def.B)}
			logv := func(p Params) [4]float64 {
				return [4]float64{math.Log(p.R), math.Log(p.Alpha), math.Log(p.A), math.Log(p.B)}
			}
			fg, _, _ := mbgObjective(compact(append([]Obs{}, obs...)), logv(got), prior, opt.PriorSD)
			fs, _, _ := mbgObjective(compact(append([]Obs{}, obs...)), logv(ref), prior, opt.PriorSD)
			if fg > fs+1e-6*math.Abs(fs) {
				t.Errorf("%v: gradient fit objective %v above the simplex's %v", want, fg, fs)
			}
			if opt.PriorSD == 0 {
				for _, c := range [][2]float64{{got.R, ref.R}, {got.Alpha, ref.Alpha}, {got.A, ref.A}, {got.B, ref.B}} {
					if math.Abs(c[0]-c[1]) > 1e-3*c[1] {
						t.Errorf("%v: gradient fit %v, simplex %v", want, got, ref)
						break
					}
				}
			}
			if st.Evals*3 > rst.Evals {
				t.Errorf("%v: gradient fit took %d evaluations, simplex %d", want, st.Evals, rst.Evals)
			}
		}
	}
}

// simplexFit is FitWith on the simplex path (an observation with K = 2
// and weight ~0 forces it without moving the optimum measurably).
func simplexFit(t *testing.T, obs []Obs, opt FitOptions) (Params, FitStats) {
	t.Helper()
	d := append([]Obs{}, obs...)
	for i := range d {
		d[i].K = 1
	}
	// Obs.K = 1 is plain MBG/NBD; the simplex is forced by K = 2 on a
	// row weighted 1e-300.
	d = append(d, Obs{X: 1, Tx: 1, T: 2, N: 1e-300, K: 2})
	p, st, err := FitWith(MBGNBD, d, Params{}, opt)
	if err != nil {
		t.Fatal(err)
	}
	return p, st
}

// BenchmarkFit: one fit of 2,000 MBG/NBD customers (a refit's sample),
// warm from near the optimum and cold from the defaults.
func BenchmarkFit(b *testing.B) {
	want := Params{Kind: MBGNBD, R: 1.2, Alpha: 40, A: 0.5, B: 3}
	obs := simulate(want, 2000, 365, 9)
	for _, warm := range []bool{true, false} {
		start, step := Params{}, 0.5
		if warm {
			start, step = Params{Kind: MBGNBD, R: 1.3, Alpha: 38, A: 0.55, B: 3.2}, 0.1
		}
		b.Run(fmt.Sprintf("warm=%v", warm), func(b *testing.B) {
			var evals int
			for range b.N {
				_, st, err := FitWith(MBGNBD, obs, start, FitOptions{MaxIter: 200, Step: step, Tol: 1e-8, PriorSD: 2})
				if err != nil {
					b.Fatal(err)
				}
				evals += st.Evals
			}
			b.ReportMetric(float64(evals)/float64(b.N), "evals/op")
		})
	}
}
