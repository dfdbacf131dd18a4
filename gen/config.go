package gen

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Defaults used when the corresponding Config field is zero.
const (
	DefaultCustomers      = 1000
	DefaultDays           = 365
	DefaultMalformedShare = 0.002
	DefaultDuplicateShare = 0.001
)

// DefaultStart is the first day of generated history when Config.Start is
// zero: 2026-01-01 00:00 UTC.
var DefaultStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Config says what to generate. The zero value is valid: every zero field
// takes its default.
type Config struct {
	// Customers is the number of customers, ids c000001 upwards.
	Customers int
	// Days is the length of the history in days; events fall in
	// [Start, Start+Days).
	Days int
	// Start is the first day, in event time. It is truncated to the minute.
	Start time.Time
	// Seed makes the output deterministic: the same Config gives the same
	// records, byte for byte.
	Seed int64
	// Mix gives the share of each archetype. Nil means DefaultMix. Shares
	// need not sum to 1; they are normalised.
	Mix Mix
	// MalformedShare is the share of all records that are malformed.
	// Zero means DefaultMalformedShare; a negative value means none.
	MalformedShare float64
	// DuplicateShare is the share of all records that are a re-send of the
	// previous record with the same event_id (a producer retry). Zero
	// means DefaultDuplicateShare; a negative value means none.
	DuplicateShare float64
	// Campaign, if set, plants a known campaign effect on the triggers the
	// pipeline will emit (campaign.go); nil plants none.
	Campaign *Campaign
}

// Mix maps each archetype to its share of the customers.
type Mix map[Archetype]float64

// DefaultMix returns the default archetype shares; they sum to 1.
func DefaultMix() Mix {
	return Mix{
		SteadyWeekly:    0.14,
		SteadyBiweekly:  0.12,
		SteadyMonthly:   0.12,
		Seasonal:        0.05,
		Lapser:          0.10,
		EmailDisengager: 0.06,
		Unsubscriber:    0.05,
		Bouncer:         0.04,
		SupportFriction: 0.05,
		LowSatisfaction: 0.05,
		SpendDecliner:   0.06,
		Returner:        0.05,
		NewCustomer:     0.06,
		OneTimeBuyer:    0.05,
	}
}

// ConfigError reports an invalid Config field.
type ConfigError struct {
	Field string
	Msg   string
}

func (e *ConfigError) Error() string { return "gen: config " + e.Field + ": " + e.Msg }

// ErrConfig is matched by every *ConfigError (errors.Is(err, ErrConfig)).
var ErrConfig = errors.New("gen: invalid config")

// Is reports whether target is ErrConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrConfig }

// maxCustomers bounds Customers so that ids keep their fixed width
// (c000001 … c999999) and sort lexically.
const maxCustomers = 999_999

// withDefaults returns c with defaults applied, or a *ConfigError.
func (c Config) withDefaults() (Config, error) {
	if c.Customers == 0 {
		c.Customers = DefaultCustomers
	}
	if c.Customers < 0 || c.Customers > maxCustomers {
		return c, &ConfigError{"Customers", fmt.Sprintf("%d is out of range; use 1 to %d", c.Customers, maxCustomers)}
	}
	if c.Days == 0 {
		c.Days = DefaultDays
	}
	if c.Days < 0 || c.Days > 20*366 {
		return c, &ConfigError{"Days", fmt.Sprintf("%d is out of range; use 1 to %d", c.Days, 20*366)}
	}
	if c.Start.IsZero() {
		c.Start = DefaultStart
	}
	c.Start = c.Start.UTC().Truncate(time.Minute)
	if c.Start.Year() < 1971 || c.Start.Year() > 2200 {
		return c, &ConfigError{"Start", fmt.Sprintf("%s is out of range; use a year between 1971 and 2200", c.Start.Format(time.RFC3339))}
	}
	if c.Mix == nil {
		c.Mix = DefaultMix()
	}
	var sum float64
	for a, s := range c.Mix {
		if !a.valid() {
			return c, &ConfigError{"Mix", fmt.Sprintf("unknown archetype %q; known: %v", a, Archetypes())}
		}
		if s < 0 || math.IsNaN(s) || math.IsInf(s, 0) {
			return c, &ConfigError{"Mix", fmt.Sprintf("share of %s is %v; use a finite share >= 0", a, s)}
		}
		sum += s
	}
	if sum <= 0 {
		return c, &ConfigError{"Mix", "all shares are zero; give at least one archetype a positive share"}
	}
	norm := make(Mix, len(c.Mix))
	for a, s := range c.Mix {
		norm[a] = s / sum
	}
	c.Mix = norm
	share := func(field string, v *float64, def float64) error {
		switch {
		case math.IsNaN(*v) || *v >= 0.5:
			return &ConfigError{field, fmt.Sprintf("%v is out of range; use 0 (default %v), a share below 0.5, or a negative value for none", *v, def)}
		case *v == 0:
			*v = def
		case *v < 0:
			*v = 0
		}
		return nil
	}
	if err := share("MalformedShare", &c.MalformedShare, DefaultMalformedShare); err != nil {
		return c, err
	}
	if err := share("DuplicateShare", &c.DuplicateShare, DefaultDuplicateShare); err != nil {
		return c, err
	}
	if c.Campaign != nil {
		camp := *c.Campaign
		if err := camp.withDefaults(); err != nil {
			return c, err
		}
		c.Campaign = &camp
	}
	return c, nil
}
