package lapse

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"

	"github.com/winback/winback/pipeline/event"
)

// Reason indexes, in event.Reasons order; bit i of a reason mask is reason i.
const (
	rLapse = iota
	rSpend
	rEngagement
	rUnsub
	rBounce
	rFriction
	rLowSat
	nReasons
)

const (
	bitLapse      uint8 = 1 << rLapse
	bitSpend      uint8 = 1 << rSpend
	bitEngagement uint8 = 1 << rEngagement
	bitUnsub      uint8 = 1 << rUnsub
	bitBounce     uint8 = 1 << rBounce
	bitFriction   uint8 = 1 << rFriction
	bitLowSat     uint8 = 1 << rLowSat

	// stateBits are the reasons that fire when their condition starts to
	// hold; the others fire on the event (or timer) that causes them.
	stateBits = bitSpend | bitEngagement | bitFriction
	// deferBits are the reasons that, when a cooldown holds them back,
	// are looked at again when it ends.
	deferBits = bitLapse | bitSpend | bitEngagement | bitFriction
)

func reasonIndex(r event.Reason) int {
	for i, x := range event.Reasons {
		if x == r {
			return i
		}
	}
	return -1
}

// TriggerID returns the deterministic id of a trigger: the hex of the first
// 16 bytes of SHA-256 over the customer id, the kind, the reason and the
// episode (an event time in Unix ms: the last order before the silence for
// PURCHASE_LAPSE, the time the condition fired otherwise; see
// preemptEpisode for a trigger that pre-empts its cooldown). A RECOVERED
// trigger uses its original trigger's reason and episode.
func TriggerID(customerID string, kind event.TriggerKind, reason event.Reason, episode int64) string {
	var buf [128]byte // on the stack for the usual id lengths
	b := append(buf[:0], customerID...)
	b = append(b, 0)
	b = append(b, kind...)
	b = append(b, 0)
	b = append(b, reason...)
	b = append(b, 0)
	b = strconv.AppendInt(b, episode, 10)
	sum := sha256.Sum256(b)
	var out [32]byte
	hex.Encode(out[:], sum[:16])
	return string(out[:])
}

// hash32 is a stable (cross-process) 32-bit hash, never 0.
func hash32(s string) uint32 {
	v := uint64(14695981039346656037) // FNV-1a, inline: no allocation
	for i := 0; i < len(s); i++ {
		v ^= uint64(s[i])
		v *= 1099511628211
	}
	x := uint32(v) ^ uint32(v>>32)
	if x == 0 {
		x = 1
	}
	return x
}
