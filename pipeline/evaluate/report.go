package evaluate

import (
	"fmt"
	"math"
	"strings"
	"text/tabwriter"

	"github.com/winback/winback/pipeline/btyd"
)

// Customer is one customer as of the cutoff: its scores (higher means more
// likely to lapse) and what it did in the horizon after the cutoff.
type Customer struct {
	ID string
	// Orders are the purchase occasions before the cutoff (orders at least
	// purchase_lapse.min_interval_hours apart; 0 for a customer seen only
	// through e-mail or support).
	Orders int
	// Reasons are the customer's active reasons as of the cutoff.
	Reasons []string
	// Rank is 1 for the highest PLapse (ties by id), set by ScoreEngines.
	Rank int
	// PLapse is winback's probability of no order within the horizon;
	// BGNBD the baseline model's; Recency the days since the last order.
	PLapse, BGNBD, Recency float64
	Returned               bool // ordered within the horizon after the cutoff

	obs btyd.Obs // the purchase model's statistics, for DormantRates
}

// Score names, in report order.
const (
	ScoreWinback = "winback p_lapse"
	ScoreRecency = "days since last order"
	ScoreBGNBD   = "BG/NBD"
)

// Report is the model-quality report: for each group of customers, each
// score's ranking (AUC, precision and lift at the top 10 % and 20 %) and,
// for the probabilities, their Brier score and calibration by decile.
// "Lapsed" is the positive class: no order within the horizon.
type Report struct {
	Groups []Group `json:"groups"`
}

// Group is one population of the report ("all": every customer with an
// order before the cutoff; "repeat": those with at least 2).
type Group struct {
	Name      string `json:"name"`
	Customers int    `json:"customers"`
	Lapsed    int    `json:"lapsed"`
	// BaseRate is the share lapsed; BaseRateBrier the Brier score of
	// forecasting it for everyone.
	BaseRate      float64 `json:"base_rate"`
	BaseRateBrier float64 `json:"base_rate_brier"`
	Scores        []Score `json:"scores"`
}

// Score is one score's figures in a group. Brier and Calibration are only
// for probabilities (nil and empty for recency).
type Score struct {
	Name        string   `json:"name"`
	AUC         *float64 `json:"auc"` // nil without both classes
	Top10       TopK     `json:"top_10pct"`
	Top20       TopK     `json:"top_20pct"`
	Brier       *float64 `json:"brier"`
	Calibration []Bin    `json:"calibration"`
}

func ptr(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// Build computes the report over cs (in the order given: ties in the top
// lists and deciles break by it, so pass them sorted by id).
func Build(cs []Customer) Report {
	var r Report
	for _, g := range groups {
		r.Groups = append(r.Groups, group(g.name, g.of(cs)))
	}
	return r
}

// groupSpec is one of the report's populations: the customers with at
// least minOrders purchase occasions before the cutoff.
type groupSpec struct {
	name      string
	minOrders int
}

var groups = []groupSpec{{"all", 1}, {"repeat", 2}}

// of returns the customers of cs in the group.
func (g groupSpec) of(cs []Customer) []Customer {
	var sel []Customer
	for _, c := range cs {
		if c.Orders >= g.minOrders {
			sel = append(sel, c)
		}
	}
	return sel
}

// DormantRow is p_lapse's ranking and forecast at one
// purchase_lapse.dormant_rate, over the report's two groups.
type DormantRow struct {
	Rate        float64  `json:"rate"`
	AUC         *float64 `json:"auc"` // all customers with an order; nil without both classes
	Brier       float64  `json:"brier"`
	RepeatAUC   *float64 `json:"repeat_auc"`
	RepeatBrier float64  `json:"repeat_brier"`
}

// DormantRates scores cs again at each of rates, with the parameters
// ScoreEngines fitted (m.Winback) and the same horizon, so that a history
// can tell which purchase_lapse.dormant_rate suits it.
func DormantRates(cs []Customer, m Models, horizonDays float64, rates []float64) []DormantRow {
	sels := make([][]Customer, len(groups))
	for i, g := range groups {
		sels[i] = g.of(cs)
	}
	rows := make([]DormantRow, 0, len(rates))
	for _, k := range rates {
		row := DormantRow{Rate: k}
		for j, g := range groups {
			sel := sels[j]
			if len(sel) == 0 {
				continue
			}
			p, pos := make([]float64, len(sel)), make([]bool, len(sel))
			for i, c := range sel {
				p[i], _ = m.Winback.PNoPurchaseDormant(c.obs.X, c.obs.Tx, c.obs.T, horizonDays, k)
				pos[i] = !c.Returned
			}
			if g.name == "all" {
				row.AUC, row.Brier = ptr(AUC(p, pos)), Brier(p, pos)
			} else {
				row.RepeatAUC, row.RepeatBrier = ptr(AUC(p, pos)), Brier(p, pos)
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// DormantTable is rows as a text table.
func DormantTable(rows []DormantRow) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "dormant_rate\tAUC all\tBrier all\tAUC repeat\tBrier repeat\t")
	for _, r := range rows {
		fmt.Fprintf(w, "%g\t%s\t%.4f\t%s\t%.4f\t\n", r.Rate, fmtPtr(r.AUC), r.Brier, fmtPtr(r.RepeatAUC), r.RepeatBrier)
	}
	w.Flush()
	return b.String()
}

func group(name string, cs []Customer) Group {
	g := Group{Name: name, Customers: len(cs), Scores: []Score{}}
	pos := make([]bool, len(cs))
	for i, c := range cs {
		pos[i] = !c.Returned
		if pos[i] {
			g.Lapsed++
		}
	}
	if len(cs) == 0 {
		return g
	}
	g.BaseRate = BaseRate(pos)
	g.BaseRateBrier = g.BaseRate * (1 - g.BaseRate)
	col := func(f func(c Customer) float64) []float64 {
		v := make([]float64, len(cs))
		for i, c := range cs {
			v[i] = f(c)
		}
		return v
	}
	for _, s := range []struct {
		name string
		v    []float64
		prob bool
	}{
		{ScoreWinback, col(func(c Customer) float64 { return c.PLapse }), true},
		{ScoreRecency, col(func(c Customer) float64 { return c.Recency }), false},
		{ScoreBGNBD, col(func(c Customer) float64 { return c.BGNBD }), true},
	} {
		sc := Score{Name: s.name, AUC: ptr(AUC(s.v, pos)), Top10: PrecisionAt(s.v, pos, 0.1), Top20: PrecisionAt(s.v, pos, 0.2), Calibration: []Bin{}}
		if s.prob {
			sc.Brier = ptr(Brier(s.v, pos))
			sc.Calibration = Calibration(s.v, pos, 10)
		}
		g.Scores = append(g.Scores, sc)
	}
	return g
}

// Group returns the group named name, or nil.
func (r *Report) Group(name string) *Group {
	for i := range r.Groups {
		if r.Groups[i].Name == name {
			return &r.Groups[i]
		}
	}
	return nil
}

// Score returns the score named name, or nil.
func (g *Group) Score(name string) *Score {
	for i := range g.Scores {
		if g.Scores[i].Name == name {
			return &g.Scores[i]
		}
	}
	return nil
}

func fmtPtr(v *float64) string {
	if v == nil {
		return "–"
	}
	return fmt.Sprintf("%.4f", *v)
}

// String renders the report as text tables.
func (r Report) String() string {
	var sb strings.Builder
	for _, g := range r.Groups {
		fmt.Fprintf(&sb, "Customers %s (%s): %d, lapsed (no order within the horizon) %d = %.1f%%, base-rate Brier %.4f\n",
			g.Name, map[string]string{"all": "≥ 1 order before the cutoff", "repeat": "≥ 2 orders before the cutoff"}[g.Name],
			g.Customers, g.Lapsed, 100*g.BaseRate, g.BaseRateBrier)
		w := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(w, "score\tAUC\tprecision top 10%\tlift\tprecision top 20%\tlift\tBrier\t")
		for _, s := range g.Scores {
			fmt.Fprintf(w, "%s\t%s\t%.3f\t%.2f\t%.3f\t%.2f\t%s\t\n", s.Name, fmtPtr(s.AUC), s.Top10.Precision, s.Top10.Lift, s.Top20.Precision, s.Top20.Lift, fmtPtr(s.Brier))
		}
		w.Flush()
		sb.WriteString("\nCalibration by decile (mean forecast / observed share lapsed):\n")
		w = tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprint(w, "score\t")
		for d := 1; d <= 10; d++ {
			fmt.Fprintf(w, "d%d\t", d)
		}
		fmt.Fprintln(w)
		for _, s := range g.Scores {
			if len(s.Calibration) == 0 {
				continue
			}
			fmt.Fprintf(w, "%s\t", s.Name)
			for _, b := range s.Calibration {
				fmt.Fprintf(w, "%.2f/%.2f\t", b.MeanForecast, b.Observed)
			}
			fmt.Fprintln(w)
		}
		w.Flush()
		sb.WriteString("\n")
	}
	return sb.String()
}
