// Package evaluate measures how well a lapse score ranks and forecasts who
// comes back: AUC (ties counted one half), precision and lift among the
// top-scored customers, the Brier score against the base rate's, and a
// calibration table by decile. It also builds the two baselines every
// model must beat: days since the last order (recency) and a BG/NBD model
// (package btyd) fitted on the calibration period.
//
// The report compares scores of the same customers, as of one cutoff,
// against what they did in the horizon after it ([Report]).
package evaluate
