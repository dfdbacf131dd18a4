package btyd

import (
	"fmt"
	"math"
	"slices"
)

// FitK fits MBG/CNBD-k for every K from 1 to maxK and returns the one of
// highest likelihood (the interval term makes the likelihoods of different
// K comparable; obs must carry LogIv).
func FitK(obs []Obs, maxK int, start Params) (Params, error) {
	var best Params
	bestLL := math.Inf(-1)
	for k := 1; k <= max(maxK, 1); k++ {
		s := start
		s.K = k
		p, err := Fit(MBGNBD, obs, s)
		if err != nil {
			return Params{}, err
		}
		if ll := p.LogLikelihood(obs); ll > bestLL {
			best, bestLL = p, ll
		}
	}
	return best, nil
}

// Fit finds the maximum-likelihood parameters of kind for obs, starting
// from start (DefaultParams(kind) if start is not Valid), with start.K as
// the (fixed) regularity. Observations with T ≤ 0 are left out. It returns
// ErrNoData when none is left.
func Fit(kind Kind, obs []Obs, start Params) (Params, error) {
	p, _, err := FitWith(kind, obs, start, FitOptions{})
	return p, err
}

// FitOptions bound the cost of a fit (FitWith). The zero value is Fit's.
type FitOptions struct {
	// MaxIter caps the simplex iterations of each of the fit's two rounds
	// (0: 4000); the gradient fit of MBG/NBD (K = 1) may take twice as
	// many quasi-Newton iterations.
	MaxIter int
	// Step is the first round's simplex edge in log parameters, or the
	// gradient fit's first step (0: 0.5, a cold start); a warm start from
	// parameters near the optimum needs less (0.1 moves each parameter by
	// about 10 %).
	Step float64
	// Tol is the relative spread of the simplex's values at which a round
	// stops (0: 1e-10 for the first round, 1e-12 for the second), or the
	// gain still expected (half the Newton decrement) relative to the
	// objective at which the gradient fit stops (0: 1e-12).
	Tol float64
	// PriorSD, if positive, makes the fit a maximum a posteriori one: each
	// log parameter gets an independent normal prior with this standard
	// deviation around DefaultParams(kind). It keeps the fit finite and
	// quick to converge where the likelihood has no maximum (a population
	// where nobody drops out drives a toward 0, one of identical rates
	// drives r and α toward infinity) and weighs next to nothing against
	// thousands of customers elsewhere (2 allows a factor e² ≈ 7 per
	// standard deviation).
	PriorSD float64
}

// FitStats describe a finished fit.
type FitStats struct {
	Rows  int     // distinct observations after merging identical ones
	Iter  int     // optimiser iterations (simplex: both rounds)
	Evals int     // likelihood evaluations
	LL    float64 // log-likelihood at the fitted parameters
	LL0   float64 // log-likelihood at the start parameters
}

// FitWith is Fit with bounded cost: opt caps the iterations and sets the
// first step. Each likelihood evaluation costs one pass over the distinct
// observations (a few logarithms each; the log-gamma terms are computed
// once per distinct x). MBG/NBD with K = 1 (every observation's K at
// most 1) is fitted by BFGS on the likelihood's analytic gradient
// (grad.go: a few dozen evaluations); other models and K > 1 by two
// rounds of a Nelder-Mead simplex (hundreds).
func FitWith(kind Kind, obs []Obs, start Params, opt FitOptions) (Params, FitStats, error) {
	var st FitStats
	data := make([]Obs, 0, len(obs))
	for _, o := range obs {
		if o.T > 0 && o.X >= 0 && o.Tx >= 0 && o.Tx <= o.T {
			if o.N <= 0 {
				o.N = 1
			}
			data = append(data, o)
		}
	}
	if len(data) == 0 {
		return Params{}, st, ErrNoData
	}
	data = compact(data)
	st.Rows = len(data)
	k := start.K
	if !start.Valid() {
		start = DefaultParams(kind)
	}
	start.Kind = kind
	if kind != MBGNBD {
		k = 0
	}
	maxIter, step := opt.MaxIter, opt.Step
	if maxIter <= 0 {
		maxIter = 4000
	}
	if !(step > 0) {
		step = 0.5
	}
	def := DefaultParams(kind)
	prior := [4]float64{math.Log(def.R), math.Log(def.Alpha), math.Log(def.A), math.Log(def.B)}
	var ll float64 // the log-likelihood of the last evaluation, without the prior
	nll := func(v [4]float64) float64 {
		st.Evals++
		p := Params{Kind: kind, R: math.Exp(v[0]), Alpha: math.Exp(v[1]), A: math.Exp(v[2]), B: math.Exp(v[3]), K: k}
		s := 0.0
		lastX, lastK, cx := -1.0, -1, 0.0
		la, lbx := math.Log(p.A), 0.0
		for _, o := range data {
			q := p
			if kind == MBGNBD && o.K > 0 {
				q.K = o.K
			}
			if o.X != lastX || q.K != lastK {
				lastX, lastK, cx = o.X, q.K, q.logLikX(o.X)
				lbx = math.Log(q.B + o.X)
			}
			if kind == MBGNBD && q.k() == 1 {
				// MBG/NBD's closed form, the per-x terms taken out.
				rr := q.R + o.X
				s -= o.N * (cx + logAddExp(la-rr*math.Log(q.Alpha+o.Tx), lbx-rr*math.Log(q.Alpha+o.T)))
				continue
			}
			s -= o.N * (cx + q.logLikRest(o))
		}
		if math.IsNaN(s) || math.IsInf(s, -1) {
			return math.Inf(1)
		}
		ll = -s
		if opt.PriorSD > 0 {
			for i := range v {
				d := (v[i] - prior[i]) / opt.PriorSD
				s += d * d / 2
			}
		}
		return s
	}
	tol1, tol2 := 1e-10, 1e-12
	if opt.Tol > 0 {
		tol1, tol2 = opt.Tol, opt.Tol
	}
	x0 := [4]float64{math.Log(start.R), math.Log(start.Alpha), math.Log(start.A), math.Log(start.B)}
	var best [4]float64
	if kind == MBGNBD && k <= 1 && !slices.ContainsFunc(data, func(o Obs) bool { return o.K > 1 }) {
		// MBG/NBD: the gradient fit (grad.go).
		fg := func(v [4]float64) (float64, [4]float64) {
			st.Evals++
			f, g, l := mbgObjective(data, v, prior, opt.PriorSD)
			ll = l
			return f, g
		}
		fg(x0)
		st.LL0 = ll
		var it int
		best, it = bfgs(fg, x0, step, 2*maxIter, tol2)
		st.Iter += it
		fg(best)
	} else {
		nll(x0)
		st.LL0 = ll
		var it int
		best, it = nelderMead(nll, x0, step, maxIter, tol1)
		st.Iter += it
		// A restart from the optimum escapes a collapsed simplex.
		best, it = nelderMead(nll, best, min(step, 0.1), maxIter, tol2)
		st.Iter += it
		nll(best)
	}
	p := Params{Kind: kind, R: math.Exp(best[0]), Alpha: math.Exp(best[1]), A: math.Exp(best[2]), B: math.Exp(best[3]), K: k}
	if !p.Valid() {
		return Params{}, st, fmt.Errorf("btyd: fit diverged: %v", p)
	}
	st.LL = ll
	return p, st, nil
}

// compact merges identical observations into one weighted row.
func compact(d []Obs) []Obs {
	slices.SortFunc(d, func(a, b Obs) int {
		for _, c := range [...][2]float64{{a.X, b.X}, {a.Tx, b.Tx}, {a.T, b.T}, {a.LogIv, b.LogIv}, {float64(a.K), float64(b.K)}} {
			if c[0] != c[1] {
				if c[0] < c[1] {
					return -1
				}
				return 1
			}
		}
		return 0
	})
	out := d[:0]
	for _, o := range d {
		if n := len(out); n > 0 && out[n-1].X == o.X && out[n-1].Tx == o.Tx && out[n-1].T == o.T && out[n-1].LogIv == o.LogIv && out[n-1].K == o.K {
			out[n-1].N += o.N
			continue
		}
		out = append(out, o)
	}
	return out
}

// DefaultParams are the parameters used before any fit: a purchase about
// every two months on average with wide spread across customers (r = 0.5,
// α = 30 days) and a moderate drop-out (a = 1, b = 4: one customer in five
// drops out after a given purchase).
func DefaultParams(kind Kind) Params {
	return Params{Kind: kind, R: 0.5, Alpha: 30, A: 1, B: 4}
}

// LogLikelihood is the weighted total log-likelihood of obs under p.
func (p Params) LogLikelihood(obs []Obs) float64 {
	s := 0.0
	for _, o := range obs {
		n := o.N
		if n <= 0 {
			n = 1
		}
		s += n * p.LogLik(o)
	}
	return s
}

// nelderMead minimises f from x0 with an initial simplex of edge step,
// stopping after maxIter iterations or when the spread of the simplex's
// values falls below tol (relative); it returns the best point and the
// iterations run.
func nelderMead(f func([4]float64) float64, x0 [4]float64, step float64, maxIter int, tol float64) ([4]float64, int) {
	const n = 4
	var pts [n + 1][4]float64
	var val [n + 1]float64
	pts[0] = x0
	for i := 1; i <= n; i++ {
		pts[i] = x0
		pts[i][i-1] += step
	}
	for i := range pts {
		val[i] = f(pts[i])
	}
	order := func() {
		for i := 1; i <= n; i++ {
			for j := i; j > 0 && val[j] < val[j-1]; j-- {
				val[j], val[j-1] = val[j-1], val[j]
				pts[j], pts[j-1] = pts[j-1], pts[j]
			}
		}
	}
	lin := func(a [4]float64, b [4]float64, t float64) [4]float64 {
		var o [4]float64
		for i := range o {
			o[i] = a[i] + t*(b[i]-a[i])
		}
		return o
	}
	it := 0
	for ; it < maxIter; it++ {
		order()
		if math.Abs(val[n]-val[0]) <= tol*(math.Abs(val[0])+1e-12) {
			break
		}
		var c [4]float64 // centroid of the best n
		for i := 0; i < n; i++ {
			for k := range c {
				c[k] += pts[i][k] / n
			}
		}
		xr := lin(c, pts[n], -1)
		fr := f(xr)
		switch {
		case fr < val[0]:
			xe := lin(c, pts[n], -2)
			if fe := f(xe); fe < fr {
				pts[n], val[n] = xe, fe
			} else {
				pts[n], val[n] = xr, fr
			}
		case fr < val[n-1]:
			pts[n], val[n] = xr, fr
		default:
			xc := lin(c, pts[n], 0.5)
			if fr < val[n] {
				xc = lin(c, pts[n], -0.5)
			}
			if fc := f(xc); fc < min(fr, val[n]) {
				pts[n], val[n] = xc, fc
				continue
			}
			for i := 1; i <= n; i++ {
				pts[i] = lin(pts[0], pts[i], 0.5)
				val[i] = f(pts[i])
			}
		}
	}
	order()
	return pts[0], it
}
