package lapse

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/winback/winback/pipeline/event"
)

// TriggerID is what its doc says: the hex of the first 16 bytes of
// SHA-256 over id, kind, reason and episode, NUL separated, whatever the
// id's length (the stack buffer holds 128 bytes).
func TestTriggerIDIsDocumentedHash(t *testing.T) {
	for _, id := range []string{"", "c1", "customer-0000042", strings.Repeat("x", 127), strings.Repeat("é", 200)} {
		for _, ep := range []int64{0, -1, 1704067200000, 1<<63 - 1} {
			h := sha256.New()
			h.Write([]byte(id + "\x00" + string(event.TriggerRecovered) + "\x00" + string(event.ReasonLowSatisfaction) + "\x00" + strconv.FormatInt(ep, 10)))
			want := hex.EncodeToString(h.Sum(nil)[:16])
			if got := TriggerID(id, event.TriggerRecovered, event.ReasonLowSatisfaction, ep); got != want {
				t.Errorf("TriggerID(%q, %d) = %s, want %s", id, ep, got, want)
			}
		}
	}
}

// reasonsOf lists a mask's reasons in event.Reasons order, nil for none,
// and an append to its (shared) result never writes into another mask's.
func TestReasonsOf(t *testing.T) {
	for mask := 0; mask < 1<<nReasons; mask++ {
		var want []event.Reason
		for r := range nReasons {
			if mask&(1<<r) != 0 {
				want = append(want, event.Reasons[r])
			}
		}
		got := reasonsOf(uint8(mask))
		if !slices.Equal(got, want) || (got == nil) != (want == nil) {
			t.Fatalf("reasonsOf(%07b) = %v, want %v", mask, got, want)
		}
		if cap(got) != len(got) {
			t.Fatalf("reasonsOf(%07b): capacity %d beyond its length %d", mask, cap(got), len(got))
		}
	}
}
