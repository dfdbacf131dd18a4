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
		return Params{}, ErrNoData
	}
	data = compact(data)
	k := start.K
	if !start.Valid() {
		start = DefaultParams(kind)
	}
	start.Kind = kind
	if kind != MBGNBD {
		k = 0
	}
	nll := func(v [4]float64) float64 {
		p := Params{Kind: kind, R: math.Exp(v[0]), Alpha: math.Exp(v[1]), A: math.Exp(v[2]), B: math.Exp(v[3]), K: k}
		s := 0.0
		for _, o := range data {
			s -= o.N * p.LogLik(o)
		}
		if math.IsNaN(s) || math.IsInf(s, -1) {
			return math.Inf(1)
		}
		return s
	}
	x0 := [4]float64{math.Log(start.R), math.Log(start.Alpha), math.Log(start.A), math.Log(start.B)}
	best := nelderMead(nll, x0, 0.5, 4000, 1e-10)
	// A restart from the optimum escapes a collapsed simplex.
	best = nelderMead(nll, best, 0.1, 4000, 1e-12)
	p := Params{Kind: kind, R: math.Exp(best[0]), Alpha: math.Exp(best[1]), A: math.Exp(best[2]), B: math.Exp(best[3]), K: k}
	if !p.Valid() {
		return Params{}, fmt.Errorf("btyd: fit diverged: %v", p)
	}
	return p, nil
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
// values falls below tol (relative).
func nelderMead(f func([4]float64) float64, x0 [4]float64, step float64, maxIter int, tol float64) [4]float64 {
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
	for it := 0; it < maxIter; it++ {
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
	return pts[0]
}
