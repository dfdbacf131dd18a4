package evaluate

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/winback/winback/pipeline/btyd"
	"github.com/winback/winback/pipeline/lapse"
	"github.com/winback/winback/pipeline/window"
)

// Models are the fitted population parameters of a scoring.
type Models struct {
	// Winback is the MBG/NBD model behind p_lapse, handed to the engines.
	Winback btyd.Params `json:"winback"`
	// DormantRate is p_lapse's purchase_lapse.dormant_rate.
	DormantRate float64 `json:"dormant_rate"`
	// BGNBD is the baseline, fitted on the same statistics.
	BGNBD btyd.Params `json:"bgnbd"`
}

// ScoreEngines fits winback's purchase model (MBG/NBD) and the BG/NBD baseline on
// every customer of the engines as of cutoff (Unix ms; the engines must
// have applied the history up to it), hands winback's parameters to every
// engine, and scores every customer the engines know: p_lapse (no order
// within horizonDays after the cutoff), the BG/NBD forecast of the same,
// and recency. returned reports whether a customer ordered within the
// horizon. Customers come back sorted by id, ranked by p_lapse.
//
// Customers without a placed order before the cutoff get the p_lapse of a
// newcomer (x = 0, T = 0) and no recency (NaN); the report leaves them out.
func ScoreEngines(engs []*lapse.Engine, cutoff int64, horizonDays float64, returned func(id string) bool) ([]Customer, Models, error) {
	var obs []btyd.Obs
	for _, e := range engs {
		e.PurchaseStats(cutoff, func(_ *lapse.Customer, o btyd.Obs) { obs = append(obs, o) })
	}
	var m Models
	if len(obs) == 0 {
		m.Winback, m.BGNBD = btyd.DefaultParams(btyd.MBGNBD), btyd.DefaultParams(btyd.BGNBD)
	} else {
		var err error
		if m.Winback, err = btyd.Fit(btyd.MBGNBD, obs, btyd.Params{}); err != nil {
			return nil, m, fmt.Errorf("evaluate: fitting MBG/NBD: %w", err)
		}
		if m.BGNBD, err = btyd.Fit(btyd.BGNBD, obs, btyd.Params{}); err != nil {
			return nil, m, fmt.Errorf("evaluate: fitting BG/NBD: %w", err)
		}
	}
	if len(engs) > 0 {
		m.DormantRate = engs[0].DormantRate()
	}
	var out []Customer
	day := float64(window.MsPerDay)
	for _, e := range engs {
		e.SetPurchaseModel(m.Winback)
		e.Each(func(c *lapse.Customer) {
			row := Customer{ID: c.ID(), Reasons: c.ActiveReasons(), Returned: returned(c.ID()), Recency: math.NaN()}
			if p, _, ok := e.PLapse(c, cutoff, horizonDays); ok {
				_, rep := c.Orders()
				row.Orders = rep + 1
				row.PLapse = p
				row.Recency = float64(cutoff-c.LastOrderAt()) / day
				o := e.Obs(c, cutoff)
				row.BGNBD = m.BGNBD.PNoPurchase(o.X, o.Tx, o.T, horizonDays)
				row.obs = o
			} else {
				row.PLapse, _ = m.Winback.PNoPurchaseDormant(0, 0, 0, horizonDays, m.DormantRate)
				row.BGNBD = m.BGNBD.PNoPurchase(0, 0, 0, horizonDays)
			}
			out = append(out, row)
		})
	}
	slices.SortFunc(out, func(a, b Customer) int { return strings.Compare(a.ID, b.ID) })
	for n, i := range rankOrder(col(out, func(c Customer) float64 { return c.PLapse })) {
		out[i].Rank = n + 1
	}
	return out, m, nil
}

func col(cs []Customer, f func(c Customer) float64) []float64 {
	v := make([]float64, len(cs))
	for i, c := range cs {
		v[i] = f(c)
	}
	return v
}

// ScoresHeader is the header of WriteScores' CSV.
var ScoresHeader = []string{"customer_id", "p_lapse", "score_rank", "days_since_last_order", "orders", "active_reasons", "returned"}

// WriteScores writes one CSV row per customer (ScoresHeader's columns):
// p_lapse in [0, 1] with 6 decimals, score_rank (1 = most likely to lapse),
// days_since_last_order (2 decimals; empty without an order), orders
// (purchase occasions before the cutoff), active_reasons (separated by
// "|", empty if none) and returned (1 or 0).
func WriteScores(w io.Writer, cs []Customer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(ScoresHeader); err != nil {
		return err
	}
	for _, c := range cs {
		since := ""
		if !math.IsNaN(c.Recency) {
			since = strconv.FormatFloat(c.Recency, 'f', 2, 64)
		}
		ret := "0"
		if c.Returned {
			ret = "1"
		}
		rec := []string{c.ID, strconv.FormatFloat(c.PLapse, 'f', 6, 64), strconv.Itoa(c.Rank), since,
			strconv.Itoa(c.Orders), strings.Join(c.Reasons, "|"), ret}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
