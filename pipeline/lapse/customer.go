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
	flagOpen        // an episode in recover_on is open (see openReason)
	flagLapseDone   // the silence since lastOrder was handled (fired)
	flagSpendSeen   // SPEND_DECLINE's condition held at the last order
	flagOpenControl // the open episode's trigger was CONTROL (holdout)
	flagUndo        // kept in the undo log since the checkpoint (undo.go); never in a snapshot
)

// Customer is one customer's state in a task. Its methods read it; only the
// Engine changes it. A *Customer is valid until the engine next changes:
// when a customer leaves (Erase, an eviction in Apply, Advance or Follow,
// forget.go), another one moves into its slot.
type Customer struct {
	eng        *Engine
	idTag      uint64 // the id's first 8 bytes (see idTag)
	lastChange int64  // event time of the latest change (Unix ms)
	lastOrder  int64
	spend      int64 // lifetime net spend, cents

	// The episodes of the last trigger and of the open one (a trigger with
	// a reason in recover_on that no order has closed yet).
	lastEpisode, openEpisode int64

	campaigns uint64 // 4 × 16-bit hashes of recently opened/clicked campaigns
	ordWin    window.Orders
	sup       *window.Support // nil until the first ticket event
	mail      window.Emails

	// Duplicate detection: hashes of the last event ids.
	seen [dedupSlots]uint32

	version uint32
	orders  uint32 // lifetime net orders
	// repeats counts purchase occasions after the first (BG/NBD's x):
	// placed orders at least min_interval_hours after the previous newest.
	repeats uint32
	slot    uint32
	idRef   uint32 // see idStore
	// Unix seconds (ClickHouse keeps these to the second anyway).
	firstOrder uint32 // 0 = none
	lastAsOf   uint32 // AsOf of the last trigger
	openAsOf   uint32 // AsOf of the open trigger

	iv        window.Intervals
	firedDay  [nReasons]uint16  // day+1 of the reason's last trigger; 0 = never
	bounceDay [2]uint16         // days+1 of the last two bounces, newest first
	unsubDay  uint16            // day of the unsubscribe
	cohortH   uint16            // cohort interval (hours) as of the last change
	engS      uint16            // ENGAGEMENT_DECLINE's CUSUM, 1/256 nat (see cusum.go)
	firedPrio [nReasons]uint8   // the priority of that trigger
	sent      [maxBudget]uint16 // days+1 of the last WINBACK triggers, newest first (budget.go)
	heldDay   uint16            // day+1 the budget first held back the reasons in held

	idLen               uint8
	seenPos             uint8
	active, pending     uint8 // reason masks as of the last evaluation
	held                uint8 // reasons the contact budget holds back
	lastKind            uint8 // 0 none, 1 WINBACK, 2 RECOVERED
	lastReason          uint8 // reason index of the last trigger
	openReason          uint8 // primary reason of the open episode
	ivBucket, clvBucket uint8 // this customer's cell in the task sketches
	tier                uint8 // tierLow… as of the last change
	engP0               uint8 // the open rate (× 255) the CUSUM's run tests against; 0 = no run
	flags               uint8
	// modelGap memoises the lapse's model gap in days plus 1 (0 = not
	// known): it depends only on the orders and the purchase model, and
	// takes a root search for a regular customer. Not in the snapshot
	// (recomputed); in the struct's padding. A read that asks for the gap
	// (MarshalJSON, Probe) may fill it: like the engine, not safe for
	// concurrent use (the runner serves lookups under its lock).
	modelGap float32
}

// seconds converts Unix ms to the Unix seconds the customer stores
// (clamped to [1, 2^32-1] for times after 1970, 0 before).
func seconds(ms int64) uint32 {
	if ms < 1000 {
		return 0
	}
	return uint32(min(ms/1000, 1<<32-1))
}

func millis(s uint32) int64 { return int64(s) * 1000 }

const (
	tierUnknown uint8 = iota
	tierLow
	tierMedium
	tierHigh
)

var tierNames = [...]event.Tier{tierUnknown: event.TierLow, tierLow: event.TierLow, tierMedium: event.TierMedium, tierHigh: event.TierHigh}

// ID returns the customer id.
func (c *Customer) ID() string { return c.eng.ids.get(c.idRef, c.idLen) }

// idTag packs the first (up to) 8 bytes of id little-endian, zero padded.
func idTag(id string) uint64 {
	if len(id) >= 8 {
		return uint64(id[0]) | uint64(id[1])<<8 | uint64(id[2])<<16 | uint64(id[3])<<24 |
			uint64(id[4])<<32 | uint64(id[5])<<40 | uint64(id[6])<<48 | uint64(id[7])<<56
	}
	var t uint64
	for i := len(id) - 1; i >= 0; i-- {
		t = t<<8 | uint64(id[i])
	}
	return t
}

// hasID reports whether c's id is id. The length and the first 8 bytes
// are in c itself, so only ids longer than 8 bytes read the idStore.
func (c *Customer) hasID(id string, tag uint64) bool {
	switch {
	case c.idTag != tag:
		return false
	case c.idLen == longLen:
		return c.ID() == id // long, or past 4 GiB of ids
	case int(c.idLen) != len(id):
		return false
	case len(id) <= 8:
		return true
	}
	return c.ID()[8:] == id[8:]
}

// Version grows by one with every change of the customer's state (an event
// applied, a timer fired); the same input gives the same versions.
func (c *Customer) Version() uint64 { return uint64(c.version) }

// Due returns the customer's pending timer (Unix ms) and whether there is
// one.
func (c *Customer) Due() (int64, bool) { return c.eng.timers.Due(c.slot) }

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
