package window

// MsPerDay is the number of milliseconds in a day.
const MsPerDay int64 = 86_400_000

// Horizon is how many days of history the order and support windows keep:
// the 90-day window and the 90 days before it.
const Horizon = 180

// MaxDay is the largest day number the windows store (year 2149).
const MaxDay = 1<<16 - 1

// Day returns the UTC day number (days since 1970-01-01) of the Unix
// millisecond time ms, clamped to [0, MaxDay].
func Day(ms int64) int32 {
	if ms <= 0 {
		return 0
	}
	d := ms / MsPerDay
	if d > MaxDay {
		return MaxDay
	}
	return int32(d)
}
