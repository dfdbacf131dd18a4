package btyd

import (
	"bufio"
	"os"
	"strings"
	"testing"
	"time"
)

// cdnowCalibration reads testdata/cdnow_sample.txt (see its README) and
// returns each customer's (x, t_x, T) in weeks over the BG/NBD paper's
// calibration period, 39 weeks from 1997-01-01: x counts the days with a
// purchase after the first, as the paper does.
func cdnowCalibration(t *testing.T) []Obs {
	t.Helper()
	f, err := os.Open("testdata/cdnow_sample.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	end := time.Date(1997, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, 39*7-1)
	type customer struct {
		first, last time.Time
		days        map[time.Time]bool
	}
	byID := map[string]*customer{}
	var ids []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		cols := strings.Fields(sc.Text())
		if len(cols) == 0 {
			continue
		}
		if len(cols) != 5 {
			t.Fatalf("line %q: %d columns, want 5", sc.Text(), len(cols))
		}
		day, err := time.Parse("20060102", cols[2])
		if err != nil {
			t.Fatal(err)
		}
		c := byID[cols[1]]
		if c == nil {
			c = &customer{first: day, last: day, days: map[time.Time]bool{}}
			byID[cols[1]] = c
			ids = append(ids, cols[1])
		}
		if !day.After(end) {
			c.days[day] = true
			if day.After(c.last) {
				c.last = day
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	weeks := func(d time.Duration) float64 { return d.Hours() / (24 * 7) }
	obs := make([]Obs, 0, len(ids))
	for _, id := range ids {
		c := byID[id]
		obs = append(obs, Obs{X: float64(len(c.days) - 1), Tx: weeks(c.last.Sub(c.first)), T: weeks(end.Sub(c.first))})
	}
	return obs
}

// TestFitCDNOWSample fits BG/NBD and MBG/NBD on the CDNOW panel's
// calibration period and compares them with the estimates published for
// the same data: BG/NBD r = 0.243, α = 4.414, a = 0.793, b = 2.426 and
// log-likelihood −9582.4 (Fader, Hardie & Lee 2005, table 1); MBG/NBD
// r = 0.525, α = 6.183, a = 0.891, b = 1.614 (Batislam, Denizel &
// Filiztekin 2007, as the R package BTYDplus also finds). α is in weeks,
// as the papers' time unit; the engine fits in days (α × 7).
func TestFitCDNOWSample(t *testing.T) {
	obs := cdnowCalibration(t)
	if len(obs) != 2357 {
		t.Fatalf("%d customers, want 2357", len(obs))
	}
	for _, tc := range []struct {
		want Params
		ll   float64 // published log-likelihood, 0 if none
	}{
		{Params{Kind: BGNBD, R: 0.243, Alpha: 4.414, A: 0.793, B: 2.426}, -9582.4},
		{Params{Kind: MBGNBD, R: 0.525, Alpha: 6.183, A: 0.891, B: 1.614}, 0},
	} {
		got, err := Fit(tc.want.Kind, obs, Params{})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("fitted %v, log-likelihood %.2f (published %v)", got, got.LogLikelihood(obs), tc.want)
		// The published estimates have three decimals.
		const rel = 0.002
		near(t, tc.want.Kind.String()+" r", got.R, tc.want.R, rel)
		near(t, tc.want.Kind.String()+" alpha", got.Alpha, tc.want.Alpha, rel)
		near(t, tc.want.Kind.String()+" a", got.A, tc.want.A, rel)
		near(t, tc.want.Kind.String()+" b", got.B, tc.want.B, rel)
		if ll := got.LogLikelihood(obs); tc.ll != 0 && (ll < tc.ll-0.05 || ll > tc.ll+0.05) {
			t.Errorf("%v log-likelihood %.2f, published %.1f", tc.want.Kind, ll, tc.ll)
		}
	}
}
