package btyd

import "math"

// The gradient fit of MBG/NBD (K = 1). Its log-likelihood has a closed
// form whose derivatives cost next to nothing beside its value: per
// observation the same two logarithms, one exponential and one log1p, and
// a few divisions; per distinct x four digammas. With the gradient a
// quasi-Newton method (BFGS) reaches the optimum in a few dozen
// evaluations where the simplex needs hundreds, and it stops on the
// Newton decrement, a measure of how much likelihood is still to gain,
// rather than on the simplex's spread.

// mbgObjective is the negative log-likelihood of MBG/NBD (K = 1) over
// data (sorted by x, as compact leaves it) and its gradient in the log
// parameters v = log(r, α, a, b); with priorSD > 0 it adds the normal
// prior around prior. ll is the log-likelihood without the prior.
func mbgObjective(data []Obs, v [4]float64, prior [4]float64, priorSD float64) (f float64, g [4]float64, ll float64) {
	r, al, a, b := math.Exp(v[0]), math.Exp(v[1]), math.Exp(v[2]), math.Exp(v[3])
	la, lal := math.Log(a), math.Log(al)
	lgab, lgb, lgr := lgamma(a+b), lgamma(b), lgamma(r)
	psab, psb, psr := digamma(a+b), digamma(b), digamma(r)
	var s, gr, gal, ga, gb float64 // log-likelihood and its derivatives in (r, α, a, b)
	lastX := math.NaN()
	var cx, lbx, bx, rr, dcr, dca, dcb float64
	for _, o := range data {
		if o.X != lastX {
			x := o.X
			lastX = x
			cx = lgab + lgamma(b+x) - lgb - lgamma(a+b+x+1) + lgamma(r+x) - lgr + r*lal
			ps1 := digamma(a + b + x + 1)
			dcr = digamma(r+x) - psr + lal
			dca = psab - ps1
			dcb = psab + digamma(b+x) - psb - ps1
			bx = b + x
			lbx = math.Log(bx)
			rr = r + x
		}
		n := o.N
		at, aT := al+o.Tx, al+o.T
		l1, l2 := math.Log(at), math.Log(aT)
		u1 := la - rr*l1  // dead after the last purchase
		u2 := lbx - rr*l2 // alive throughout
		var lse, w1 float64
		if u1 >= u2 {
			e := math.Exp(u2 - u1)
			lse, w1 = u1+math.Log1p(e), 1/(1+e)
		} else {
			e := math.Exp(u1 - u2)
			lse, w1 = u2+math.Log1p(e), e/(1+e)
		}
		w2 := 1 - w1
		s += n * (cx + lse)
		gr += n * (dcr - w1*l1 - w2*l2)
		gal += n * (r/al - rr*(w1/at+w2/aT))
		ga += n * (dca + w1/a)
		gb += n * (dcb + w2/bx)
	}
	ll = s
	// Minimise −LL; the chain rule for log parameters multiplies by θ.
	f = -s
	g = [4]float64{-gr * r, -gal * al, -ga * a, -gb * b}
	if priorSD > 0 {
		for i := range v {
			d := (v[i] - prior[i]) / priorSD
			f += d * d / 2
			g[i] += d / priorSD
		}
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return math.Inf(1), g, ll
	}
	for _, gi := range g {
		if math.IsNaN(gi) || math.IsInf(gi, 0) {
			return math.Inf(1), g, ll
		}
	}
	return f, g, ll
}

func lgamma(v float64) float64 { l, _ := math.Lgamma(v); return l }

// digamma is ψ(v) for v > 0: the recurrence ψ(v) = ψ(v+1) − 1/v up to
// v ≥ 6, then the asymptotic series (error below 1e-12 there).
func digamma(v float64) float64 {
	var s float64
	for v < 6 {
		s -= 1 / v
		v++
	}
	w := 1 / (v * v)
	return s + math.Log(v) - 0.5/v - w*(1.0/12-w*(1.0/120-w*(1.0/252-w*(1.0/240-w/132))))
}

// bfgs minimises fg (value and gradient) from x0 with BFGS and a
// backtracking line search, starting from the Hessian of differenced
// gradients if it is positive definite at x0, else with a first step
// that moves the largest coordinate by step; no step moves a coordinate by more than 1 (a factor e in a
// parameter). It stops when half the Newton decrement gᵀHg (the gain
// still expected) falls below tol relative to |f| under the Hessian of
// differenced gradients (on a flat ridge the estimate H alone promises
// too little), after maxIter iterations, or when no step along the search
// direction decreases f.
// It returns the best point and the iterations run.
func bfgs(fg func([4]float64) (float64, [4]float64), x0 [4]float64, step float64, maxIter int, tol float64) ([4]float64, int) {
	const n = 4
	x := x0
	f, g := fg(x)
	if math.IsInf(f, 1) {
		return x0, 0
	}
	var h [n][n]float64 // inverse Hessian estimate
	// Start from the differenced Hessian where it is positive definite
	// (near the optimum, as a warm start is: a Newton step, and at the
	// optimum already no step at all); else along −g, the first step
	// setting H's scale.
	first := true
	fresh := false // h is the differenced Hessian at x
	if hh, ok := inverseHessian(fg, x, g); ok {
		h, first, fresh = hh, false, true
	}
	checks := 0 // convergence checks with a differenced Hessian
	it := 0
	for ; it < maxIter; it++ {
		var d [n]float64
		if first {
			gmax := 0.0
			for i := range g {
				gmax = max(gmax, math.Abs(g[i]))
			}
			if gmax == 0 {
				break
			}
			for i := range d {
				d[i] = -g[i] / gmax * step
			}
		} else {
			dec := 0.0
			for i := range d {
				for j := range d {
					d[i] -= h[i][j] * g[j]
				}
				dec -= g[i] * d[i]
			}
			if !(dec > 0) { // lost positive definiteness: restart along −g
				first = true
				it--
				continue
			}
			if dec/2 <= tol*(math.Abs(f)+1e-12) {
				if fresh {
					break
				}
				// H may promise too little along a ridge it has not learned
				// yet: check with the Hessian of differenced gradients, and
				// go on from it if more is to gain.
				if checks >= 3 {
					break
				}
				checks++
				hh, ok := inverseHessian(fg, x, g)
				if !ok {
					break
				}
				h, fresh = hh, true
				d, dec = [n]float64{}, 0
				for i := range d {
					for j := range d {
						d[i] -= h[i][j] * g[j]
					}
					dec -= g[i] * d[i]
				}
				if !(dec > 0) || dec/2 <= tol*(math.Abs(f)+1e-12) {
					break
				}
			}
		}
		// Cap the step, then backtrack until f decreases enough (Armijo).
		dmax := 0.0
		for i := range d {
			dmax = max(dmax, math.Abs(d[i]))
		}
		if dmax > 1 {
			for i := range d {
				d[i] /= dmax
			}
		}
		slope := 0.0
		for i := range d {
			slope += g[i] * d[i]
		}
		t := 1.0
		var xn [n]float64
		var fn float64
		var gn [n]float64
		ok := false
		for range 40 {
			for i := range xn {
				xn[i] = x[i] + t*d[i]
			}
			fn, gn = fg(xn)
			if fn <= f+1e-4*t*slope {
				ok = true
				break
			}
			t /= 2
		}
		if !ok {
			if first {
				break // not even a tiny step along −g helps: at the optimum to precision
			}
			first = true // the estimate misled: start over along −g
			continue
		}
		var s, y [n]float64
		sy, yy := 0.0, 0.0
		for i := range s {
			s[i] = xn[i] - x[i]
			y[i] = gn[i] - g[i]
			sy += s[i] * y[i]
			yy += y[i] * y[i]
		}
		gain := f - fn
		x, f, g = xn, fn, gn
		fresh = false
		if first {
			if !(sy > 0) {
				if gain <= tol*(math.Abs(f)+1e-12) {
					break
				}
				continue // stay on steepest descent
			}
			// Nocedal & Wright (6.20): scale the first estimate.
			h = [n][n]float64{}
			for i := range h {
				h[i][i] = sy / yy
			}
			first = false
		}
		if !(sy > 1e-12*yy) {
			continue // no curvature information: keep the estimate
		}
		// H ← (I − ρ s yᵀ) H (I − ρ y sᵀ) + ρ s sᵀ
		rho := 1 / sy
		var hy [n]float64
		yhy := 0.0
		for i := range hy {
			for j := range hy {
				hy[i] += h[i][j] * y[j]
			}
			yhy += y[i] * hy[i]
		}
		for i := range h {
			for j := range h[i] {
				h[i][j] += -rho*(hy[i]*s[j]+s[i]*hy[j]) + (rho*rho*yhy+rho)*s[i]*s[j]
			}
		}
	}
	return x, it
}

// inverseHessian returns the inverse of the Hessian of fg at x (g its
// gradient there), from forward differences of the gradient made
// symmetric, and false if it is not positive definite.
func inverseHessian(fg func([4]float64) (float64, [4]float64), x, g [4]float64) ([4][4]float64, bool) {
	const n, step = 4, 1e-5
	var hs [n][n]float64
	for j := range n {
		xj := x
		xj[j] += step
		_, gj := fg(xj)
		for i := range n {
			hs[i][j] = (gj[i] - g[i]) / step
		}
	}
	for i := range n {
		for j := range i {
			m := (hs[i][j] + hs[j][i]) / 2
			hs[i][j], hs[j][i] = m, m
		}
	}
	// Cholesky: hs = L Lᵀ, then the inverse column by column.
	var l [n][n]float64
	for i := range n {
		for j := 0; j <= i; j++ {
			v := hs[i][j]
			for k := range j {
				v -= l[i][k] * l[j][k]
			}
			if i == j {
				if !(v > 0) || math.IsInf(v, 0) {
					return [n][n]float64{}, false
				}
				l[i][i] = math.Sqrt(v)
			} else {
				l[i][j] = v / l[j][j]
			}
		}
	}
	var inv [n][n]float64
	for c := range n {
		var y [n]float64 // L y = e_c
		for i := range n {
			v := 0.0
			if i == c {
				v = 1
			}
			for k := range i {
				v -= l[i][k] * y[k]
			}
			y[i] = v / l[i][i]
		}
		for i := n - 1; i >= 0; i-- { // Lᵀ z = y
			v := y[i]
			for k := i + 1; k < n; k++ {
				v -= l[k][i] * inv[k][c]
			}
			inv[i][c] = v / l[i][i]
		}
	}
	return inv, true
}
