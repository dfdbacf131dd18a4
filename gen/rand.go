package gen

import (
	"math"
	"math/rand/v2"
)

// Streams of randomness. Every customer draws from its own PCG per stream,
// seeded from (Config.Seed, customer index, stream), so that planning a
// customer in New and simulating it in Each see the same numbers, and a
// change to one stream (say, support tickets) leaves the others alone.
const (
	streamPlan uint64 = iota + 1
	streamOrderTimes
	streamOrders
	streamEmail
	streamSupport
	streamGlobal   // campaigns, archetype assignment
	streamDefects  // malformed and duplicate records
	streamMalforms // content of malformed records
)

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// newRand returns the PCG for (seed, idx, stream).
func newRand(seed int64, idx int, stream uint64) *rand.Rand {
	a := splitmix(uint64(seed) ^ splitmix(uint64(idx)+1))
	b := splitmix(a ^ splitmix(stream*0x632be59bd9b4e019))
	return rand.New(rand.NewPCG(a, b))
}

// uniform returns a number in [lo, hi).
func uniform(r *rand.Rand, lo, hi float64) float64 { return lo + (hi-lo)*r.Float64() }

// lognormal returns a log-normal number with the given median and sigma.
func lognormal(r *rand.Rand, median, sigma float64) float64 {
	return median * math.Exp(sigma*r.NormFloat64())
}

// pick returns one of the weighted choices.
func pick[T any](r *rand.Rand, choices []T, weights []float64) T {
	var sum float64
	for _, w := range weights {
		sum += w
	}
	x := r.Float64() * sum
	for i, w := range weights {
		if x < w {
			return choices[i]
		}
		x -= w
	}
	return choices[len(choices)-1]
}
