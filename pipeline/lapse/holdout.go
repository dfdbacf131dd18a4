package lapse

import (
	"crypto/sha256"
	"encoding/binary"
	"strconv"
	"strings"

	"github.com/winback/winback/pipeline/event"
)

// maxHoldoutShare caps the control share: past a half, the "control" is
// the larger arm and the campaigns are the exception.
const maxHoldoutShare = 0.5

// HoldoutDraw returns the uniform draw in [0, 1) that decides the
// treatment of a WINBACK trigger of customerID for episode (the trigger's
// episode, as in TriggerID): the trigger is CONTROL when the draw is below
// the control share that applies to it. It is the first 4 bytes of
// SHA-256 over "holdout", the customer id and the episode, so a replay,
// another process or the traffic generator (which plants a campaign effect
// on it, see package gen) computes the same draw.
func HoldoutDraw(customerID string, episode int64) float64 {
	return float64(holdoutHash(customerID, episode)) / (1 << 32)
}

func holdoutHash(customerID string, episode int64) uint32 {
	h := sha256.New()
	h.Write([]byte("holdout\x00"))
	h.Write([]byte(customerID))
	h.Write([]byte{0})
	h.Write(strconv.AppendInt(nil, episode, 10))
	var sum [sha256.Size]byte
	return binary.BigEndian.Uint32(h.Sum(sum[:0]))
}

// parseHoldoutKey reads a holdout_share_by key: "REASON", "TIER" or
// "TIER/REASON". It returns the tier (tierLow…tierHigh, or 0 for any) and
// the reason index (or -1 for any).
func parseHoldoutKey(key string) (tier uint8, reason int, ok bool) {
	tierOf := func(s string) uint8 {
		switch event.Tier(s) {
		case event.TierLow:
			return tierLow
		case event.TierMedium:
			return tierMedium
		case event.TierHigh:
			return tierHigh
		}
		return 0
	}
	if t, r, found := strings.Cut(key, "/"); found {
		tier, reason = tierOf(t), reasonIndex(event.Reason(r))
		return tier, reason, tier != 0 && reason >= 0
	}
	if reason = reasonIndex(event.Reason(key)); reason >= 0 {
		return 0, reason, true
	}
	tier = tierOf(key)
	return tier, -1, tier != 0
}

// holdoutShares resolves the control share of every (tier, primary
// reason), in units of 2^-32 (so that a draw below it is CONTROL): the
// most specific holdout_share_by key wins, tier/reason over reason over
// tier over holdout_share. Holdout off gives 0 everywhere. tierUnknown
// (no value yet) is LOW, as on the trigger.
func holdoutShares(lc *LifecycleConfig) (out [tierHigh + 1][nReasons]uint64) {
	if !lc.Holdout {
		return out
	}
	var byTier [tierHigh + 1]float64
	var byReason [nReasons]float64
	var tierSet [tierHigh + 1]bool
	var reasonSet [nReasons]bool
	var both [tierHigh + 1][nReasons]float64
	var bothSet [tierHigh + 1][nReasons]bool
	for key, share := range lc.HoldoutShareBy {
		t, r, ok := parseHoldoutKey(key)
		switch {
		case !ok:
		case t != 0 && r >= 0:
			both[t][r], bothSet[t][r] = share, true
		case r >= 0:
			byReason[r], reasonSet[r] = share, true
		default:
			byTier[t], tierSet[t] = share, true
		}
	}
	for t := tierLow; t <= tierHigh; t++ {
		for r := 0; r < nReasons; r++ {
			share := lc.HoldoutShare
			switch {
			case bothSet[t][r]:
				share = both[t][r]
			case reasonSet[r]:
				share = byReason[r]
			case tierSet[t]:
				share = byTier[t]
			}
			out[t][r] = uint64(share * (1 << 32))
		}
	}
	out[tierUnknown] = out[tierLow]
	return out
}

// treatment assigns a WINBACK trigger of c with the given primary reason
// and episode to its arm.
func (e *Engine) treatment(c *Customer, primary int, episode int64) event.Treatment {
	share := e.p.holdout[c.tier][primary]
	if share != 0 && uint64(holdoutHash(c.ID(), episode)) < share {
		return event.TreatmentControl
	}
	return event.TreatmentTreated
}
