package event

// Risk bands of Aggregate.RiskScore, the probability that the customer is
// lost (docs/signals.md, "Risk"). The ClickHouse views value_risk_matrix
// and customers_at_risk are rendered with these bounds, so the views and
// the engine band customers alike.
const (
	// RiskHighMin is the lowest risk score of the HIGH band.
	RiskHighMin = 0.7
	// RiskMediumMin is the lowest risk score of the MEDIUM band, and the
	// cut of customers_at_risk.
	RiskMediumMin = 0.4
)

// RiskBand returns the band of a risk score: "HIGH", "MEDIUM" or "LOW".
func RiskBand(score float64) string {
	switch {
	case score >= RiskHighMin:
		return "HIGH"
	case score >= RiskMediumMin:
		return "MEDIUM"
	}
	return "LOW"
}
