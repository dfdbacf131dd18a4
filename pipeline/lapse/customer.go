package lapse

import (
	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/pipeline/window"
)

// dedupSlots is how many recent event ids a customer remembers.
const dedupSlots = 8

// Customer flags.
const (
	flagUnsubscribed uint8 = 1 << iota
	flagHardBounced
	flagDirty
	flagOpen // an episode in recover_on is open (see openReason)
)

// Customer is one customer's state in a task. Its methods read it; only the
// Engine changes it. It stays valid (at a fixed address) for the Engine's
// life.
type Customer struct {
	eng        *Engine
	id         string
	version    uint64
	lastChange int64 // event time of the latest change (Unix ms)
	due        int64 // armed timer, 0 = none

	// Orders.
	firstOrder, lastOrder int64
	lapseDone             int64 // lastOrder whose silence was already handled
	spend                 int64 // lifetime net spend, cents
	orders                uint32
	slot                  uint32
	ordWin                window.Orders
	iv                    window.Intervals
	ivBucket, clvBucket   uint8 // this customer's cell in the task sketches
	tier                  uint8 // tierLow… as of the last change
	flags                 uint8
	cohortH               uint16 // cohort interval (hours) as of the last change

	// E-mail.
	mail      window.Emails
	campaigns uint64    // 4 × 16-bit hashes of recently opened/clicked campaigns
	unsubDay  uint16    // day of the unsubscribe
	bounceDay [2]uint16 // days+1 of the last two bounces, newest first

	sup *window.Support // nil until the first ticket event

	// Duplicate detection: hashes of the last event ids.
	seen    [dedupSlots]uint32
	seenPos uint8

	// Trigger lifecycle.
	active, pending uint8            // reason masks as of the last evaluation
	firedDay        [nReasons]uint16 // day+1 of the reason's last trigger; 0 = never
	firedPrio       [nReasons]uint8  // its priority
	lastKind        uint8            // 0 none, 1 WINBACK, 2 RECOVERED
	lastReason      uint8            // reason index of the last trigger
	openReason      uint8            // primary reason of the open episode
	lastEpisode     int64            // episode of the last trigger
	lastAsOf        int64            // its AsOf
	openEpisode     int64            // episode of the open trigger
	openAsOf        int64            // its AsOf
}

const (
	tierUnknown uint8 = iota
	tierLow
	tierMedium
	tierHigh
)

var tierNames = [...]event.Tier{tierUnknown: event.TierLow, tierLow: event.TierLow, tierMedium: event.TierMedium, tierHigh: event.TierHigh}

// ID returns the customer id.
func (c *Customer) ID() string { return c.id }

// Version grows by one with every change of the customer's state (an event
// applied, a timer fired); the same input gives the same versions.
func (c *Customer) Version() uint64 { return c.version }

// Due returns the customer's pending timer (Unix ms) and whether there is
// one.
func (c *Customer) Due() (int64, bool) { return c.due, c.due != 0 }

// seenBefore reports whether h is among the remembered event ids.
func (c *Customer) seenBefore(h uint32) bool {
	for _, s := range c.seen {
		if s == h {
			return true
		}
	}
	return false
}

func (c *Customer) remember(h uint32) {
	c.seen[c.seenPos%dedupSlots] = h
	c.seenPos = (c.seenPos + 1) % dedupSlots
}

// campaignSeen reports whether key (a 16-bit campaign hash tagged with the
// event kind) is among the last four; if not, it is remembered.
func (c *Customer) campaignSeen(key uint16) bool {
	for i := 0; i < 4; i++ {
		if uint16(c.campaigns>>(16*i)) == key {
			return true
		}
	}
	c.campaigns = c.campaigns<<16 | uint64(key)
	return false
}
