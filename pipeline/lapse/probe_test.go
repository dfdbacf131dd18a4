package lapse

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/winback/winback/pipeline/event"
)

// TestProbeChangesNothing: probes are hints. A run that probes the coming
// events at random distances and in random numbers of steps ends with the
// same triggers, snapshots and aggregates as one that never probes.
func TestProbeChangesNothing(t *testing.T) {
	stream := genStream(5, 300, 200, 0.01)
	cfg := DefaultConfig()
	want := runStream(t, cfg, stream, 0)
	if len(want.triggers) < 50 {
		t.Fatalf("only %d triggers: the stream is too tame to test anything", len(want.triggers))
	}
	r := rand.New(rand.NewPCG(5, 5))
	e := NewEngine(cfg, 3, wallAt(0))
	probes := make([]Probe, len(stream))
	var trigs []event.Trigger
	for i := range stream {
		for range r.IntN(4) {
			if j := i + r.IntN(12); j < len(stream) {
				e.Probe(&probes[j], stream[j].ev.CustomerID)
			}
		}
		trigs, _, _ = e.Apply(trigs, stream[i].src, &stream[i].ev, wallAt(i))
	}
	trigs = e.Advance(trigs, wallAt(len(stream)))
	sameResults(t, "probed", want, collect(e, trigs), true)
}

// TestProbeFindsTheCustomer: the second step knows the customer's slot
// (else the prefetches would load the wrong memory and help nothing), an
// unknown customer ends the probe, and a probe from another engine, with a
// slot past this one's customers, is ignored rather than read.
func TestProbeFindsTheCustomer(t *testing.T) {
	big := NewEngine(DefaultConfig(), 3, wallAt(0))
	for i := range 1000 {
		big.customer(fmt.Sprintf("c%06d", i))
	}
	for i := range 1000 {
		id := fmt.Sprintf("c%06d", i)
		var p Probe
		for range ProbeSteps + 2 { // extra calls do nothing
			big.Probe(&p, id)
		}
		if c := big.Customer(id); p.slot != c.slot+1 || p.step != ProbeSteps {
			t.Fatalf("%s: probe slot %d step %d, customer slot %d", id, p.slot, p.step, c.slot)
		}
	}
	var p Probe
	big.Probe(&p, "nobody")
	big.Probe(&p, "nobody")
	if p.slot != 0 || p.step != ProbeSteps {
		t.Fatalf("unknown id: probe slot %d step %d, want 0 and done", p.slot, p.step)
	}

	small := NewEngine(DefaultConfig(), 3, wallAt(0))
	small.customer("c000001")
	p = Probe{}
	big.Probe(&p, "c000999")
	big.Probe(&p, "c000999")
	for range ProbeSteps {
		small.Probe(&p, "c000999")
	}
	if small.Len() != 1 {
		t.Fatalf("probing changed the engine: %d customers", small.Len())
	}
}
