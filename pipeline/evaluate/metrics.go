package evaluate

import (
	"math"
	"slices"
)

// AUC is the area under the ROC curve of score for telling the positives
// (pos[i] true) from the negatives: the probability that a random positive
// scores above a random negative, ties counting one half (the Mann-Whitney
// statistic with mid-ranks). It is NaN without both classes.
func AUC(score []float64, pos []bool) float64 {
	idx := make([]int, len(score))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		switch {
		case score[a] < score[b]:
			return -1
		case score[a] > score[b]:
			return 1
		}
		return 0
	})
	var nPos, nNeg, rankSum float64
	for i := 0; i < len(idx); {
		j := i + 1 // a NaN score is a group of its own
		for j < len(idx) && score[idx[j]] == score[idx[i]] {
			j++
		}
		mid := float64(i+j+1) / 2 // mid-rank of ranks i+1..j
		for k := i; k < j; k++ {
			if pos[idx[k]] {
				nPos++
				rankSum += mid
			} else {
				nNeg++
			}
		}
		i = j
	}
	if nPos == 0 || nNeg == 0 {
		return math.NaN()
	}
	return (rankSum - nPos*(nPos+1)/2) / (nPos * nNeg)
}

// Brier is the mean squared difference between the probabilities p and the
// outcomes (1 for pos). NaN when empty.
func Brier(p []float64, pos []bool) float64 {
	if len(p) == 0 {
		return math.NaN()
	}
	s := 0.0
	for i, v := range p {
		y := 0.0
		if pos[i] {
			y = 1
		}
		s += (v - y) * (v - y)
	}
	return s / float64(len(p))
}

// BaseRate is the share of positives; BaseRateBrier, the Brier score of
// always forecasting it, is base × (1 − base).
func BaseRate(pos []bool) float64 {
	if len(pos) == 0 {
		return math.NaN()
	}
	n := 0
	for _, y := range pos {
		if y {
			n++
		}
	}
	return float64(n) / float64(len(pos))
}

// rankOrder returns the indices by descending score; ties keep the input
// order (callers sort the input by customer id, so ties break by id).
func rankOrder(score []float64) []int {
	idx := make([]int, len(score))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case score[a] > score[b]:
			return -1
		case score[a] < score[b]:
			return 1
		}
		return 0
	})
	return idx
}

// TopK is the precision among the top share of customers by score (the
// first ceil(share × n), ties broken by input order) and its lift over the
// base rate.
type TopK struct {
	Share     float64 `json:"share"`
	N         int     `json:"customers"`
	Precision float64 `json:"precision"`
	Lift      float64 `json:"lift"`
}

// PrecisionAt returns the precision and lift of the top share by score.
func PrecisionAt(score []float64, pos []bool, share float64) TopK {
	idx := rankOrder(score)
	k := int(math.Ceil(share * float64(len(idx))))
	t := TopK{Share: share, N: k}
	if k == 0 {
		return t
	}
	hit := 0
	for _, i := range idx[:k] {
		if pos[i] {
			hit++
		}
	}
	t.Precision = float64(hit) / float64(k)
	if base := BaseRate(pos); base > 0 {
		t.Lift = t.Precision / base
	}
	return t
}

// Bin is one group of a calibration table: the customers whose forecast
// falls in it, their mean forecast and the share of positives.
type Bin struct {
	Customers    int     `json:"customers"`
	MeanForecast float64 `json:"mean_forecast"`
	Observed     float64 `json:"observed"`
}

// Calibration splits the customers into (up to) bins groups of equal size
// by ascending forecast p and returns each group's mean forecast and
// observed share of positives. Groups follow the sorted order (ties broken
// by input order), so equal forecasts may straddle two groups.
func Calibration(p []float64, pos []bool, bins int) []Bin {
	n := len(p)
	if n == 0 || bins < 1 {
		return []Bin{}
	}
	bins = min(bins, n)
	idx := rankOrder(p)
	slices.Reverse(idx)
	out := make([]Bin, 0, bins)
	for b := 0; b < bins; b++ {
		lo, hi := b*n/bins, (b+1)*n/bins
		var sp, sy float64
		for _, i := range idx[lo:hi] {
			sp += p[i]
			if pos[i] {
				sy++
			}
		}
		k := float64(hi - lo)
		out = append(out, Bin{Customers: hi - lo, MeanForecast: sp / k, Observed: sy / k})
	}
	return out
}
