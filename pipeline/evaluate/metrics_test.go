package evaluate

import (
	"math"
	"testing"
)

func TestAUC(t *testing.T) {
	f := func(score []float64, pos []bool, want float64) {
		t.Helper()
		got := AUC(score, pos)
		if math.IsNaN(want) {
			if !math.IsNaN(got) {
				t.Fatalf("AUC(%v, %v) = %v, want NaN", score, pos, got)
			}
			return
		}
		if math.Abs(got-want) > 1e-12 {
			t.Fatalf("AUC(%v, %v) = %v, want %v", score, pos, got, want)
		}
	}
	// Perfect, reversed, and by hand: pairs (pos, neg) won / total.
	f([]float64{0.9, 0.8, 0.2, 0.1}, []bool{true, true, false, false}, 1)
	f([]float64{0.1, 0.2, 0.8, 0.9}, []bool{true, true, false, false}, 0)
	// pos {0.8, 0.4}, neg {0.6, 0.2}: 0.8>0.6, 0.8>0.2, 0.4<0.6, 0.4>0.2 → 3/4.
	f([]float64{0.8, 0.6, 0.4, 0.2}, []bool{true, false, true, false}, 0.75)
	// Ties count one half: pos {0.5, 0.5}, neg {0.5, 0.1}: 0.5+1+0.5+1 = 3/4.
	f([]float64{0.5, 0.5, 0.5, 0.1}, []bool{true, true, false, false}, 0.75)
	// All tied: 0.5.
	f([]float64{1, 1, 1}, []bool{true, false, false}, 0.5)
	// pos {3}, neg {1, 3, 5}: 1 + 0.5 + 0 = 1.5/3.
	f([]float64{1, 3, 5, 3}, []bool{false, false, false, true}, 0.5)
	f([]float64{1, 2}, []bool{true, true}, math.NaN())
	f(nil, nil, math.NaN())
	// A NaN score does not hang the tie loop; it sorts as a group of its own.
	if a := AUC([]float64{math.NaN(), 1, 2}, []bool{true, false, true}); math.IsNaN(a) {
		t.Fatalf("AUC with a NaN score = NaN")
	}
}

func TestBrier(t *testing.T) {
	p := []float64{0.9, 0.2, 0.5, 0}
	y := []bool{true, false, false, true}
	// (0.1² + 0.2² + 0.5² + 1²) / 4 = (0.01+0.04+0.25+1)/4 = 0.325
	if got := Brier(p, y); math.Abs(got-0.325) > 1e-12 {
		t.Fatalf("Brier = %v, want 0.325", got)
	}
	if got := BaseRate(y); got != 0.5 {
		t.Fatalf("BaseRate = %v", got)
	}
	// The base rate's own Brier is base × (1 − base).
	base := []float64{0.5, 0.5, 0.5, 0.5}
	if got := Brier(base, y); got != 0.25 {
		t.Fatalf("Brier of the base rate = %v, want 0.25", got)
	}
}

func TestPrecisionAt(t *testing.T) {
	score := []float64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}
	pos := []bool{true, false, true, true, false, false, false, false, true, false}
	got := PrecisionAt(score, pos, 0.2) // top 2: true, false
	if got.N != 2 || got.Precision != 0.5 || math.Abs(got.Lift-0.5/0.4) > 1e-12 {
		t.Fatalf("top 20%% = %+v", got)
	}
	got = PrecisionAt(score, pos, 0.3) // top 3: 2 of 3
	if got.N != 3 || math.Abs(got.Precision-2.0/3) > 1e-12 {
		t.Fatalf("top 30%% = %+v", got)
	}
	// Ties break by input order: the first two of the tied four.
	got = PrecisionAt([]float64{1, 1, 1, 1}, []bool{false, true, true, true}, 0.5)
	if got.Precision != 0.5 {
		t.Fatalf("tied top 50%% = %+v", got)
	}
}

func TestCalibration(t *testing.T) {
	p := []float64{0.1, 0.9, 0.2, 0.8, 0.3, 0.7}
	y := []bool{false, true, false, true, true, false}
	bins := Calibration(p, y, 3)
	want := []Bin{{2, 0.15, 0}, {2, 0.5, 0.5}, {2, 0.85, 1}}
	if len(bins) != len(want) {
		t.Fatalf("bins = %+v", bins)
	}
	for i := range want {
		if bins[i].Customers != want[i].Customers || math.Abs(bins[i].MeanForecast-want[i].MeanForecast) > 1e-12 || bins[i].Observed != want[i].Observed {
			t.Fatalf("bin %d = %+v, want %+v", i, bins[i], want[i])
		}
	}
	if got := Calibration(p, y, 10); len(got) != 6 {
		t.Fatalf("more bins than customers: %d bins", len(got))
	}
}
