package chsql

import (
	"strconv"
	"strings"
	"testing"

	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/schemas"
)

// TestRiskBandsRendered: the views that band customers by risk score use
// the engine's bounds (event.RiskHighMin, event.RiskMediumMin), and
// nothing else.
func TestRiskBandsRendered(t *testing.T) {
	ms, err := Load(schemas.ClickHouseMigrations(), testParams())
	if err != nil {
		t.Fatal(err)
	}
	f := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	want := "multiIf(risk_score >= " + f(event.RiskHighMin) + ", 'HIGH', risk_score >= " + f(event.RiskMediumMin) + ", 'MEDIUM', 'LOW')"
	banded := 0
	for _, m := range ms {
		for _, st := range m.Statements {
			if !strings.Contains(st, "'MEDIUM', 'LOW')") || !strings.Contains(st, "risk_score >=") {
				continue
			}
			banded++
			if !strings.Contains(st, want) {
				t.Errorf("%s bands risk otherwise than %s:\n%s", m.Name, want, st)
			}
		}
	}
	if banded < 2 {
		t.Errorf("%d views band customers by risk, want value_risk_matrix and customers_at_risk", banded)
	}
}
