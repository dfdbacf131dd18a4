// Package btyd fits and evaluates "buy till you die" models of repeat
// purchasing: the BG/NBD model (Fader, Hardie & Lee 2005) and its modified
// form MBG/NBD (Batislam, Denizel & Filiztekin 2007), from each customer's
// sufficient statistics (x repeat purchases, the time t_x of the last one
// and the age T, both counted from the first purchase).
//
// Under both models a customer buys at a Poisson rate λ while alive (λ is
// Gamma(r, α) across customers) and, after a purchase, drops out with
// probability p (p is Beta(a, b) across customers). BG/NBD lets a customer
// drop out only after a repeat purchase, so every one-time buyer is alive
// for certain; MBG/NBD lets them drop out after the first purchase too,
// which is what winback uses for its calibrated return probability.
//
// Fitting is maximum likelihood over the log parameters: BFGS on the
// analytic gradient for MBG/NBD, a small Nelder-Mead simplex for the
// other variants; it takes milliseconds for thousands of distinct
// (x, t_x, T) and is meant to run off the hot path.
package btyd
