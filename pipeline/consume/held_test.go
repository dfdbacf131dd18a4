package consume

import (
	"slices"
	"testing"
)

// repQueue is a repartition source that has read up to next and still
// queues offs, in event-time order (not offset order).
func repQueue(next int64, offs ...int64) source {
	s := source{topic: "rep", next: next}
	for _, o := range offs {
		s.add().off = o
	}
	return s
}

// TestHeldNow: what a commit writes is the queued offsets as runs, with
// what the task was told to skip and has not read again yet.
func TestHeldNow(t *testing.T) {
	cases := []struct {
		name string
		s    source
		skip held
		want held
	}{
		{"empty queue, nothing to skip", repQueue(40), held{}, held{}},
		{"queued out of offset order", repQueue(40, 31, 30, 37, 32, 39), held{}, held{next: 40, runs: []int64{30, 33, 37, 38, 39, 40}}},
		{"nothing read yet", repQueue(-1), held{next: 9, runs: []int64{5, 6}}, held{next: 9, runs: []int64{5, 6}}},
		{"skip read past", repQueue(50, 45), held{next: 40, runs: []int64{20, 30}}, held{next: 50, runs: []int64{45, 46}}},
		{"skip not read past, queue empty", repQueue(25), held{next: 40, runs: []int64{20, 30, 35, 36}}, held{next: 40, runs: []int64{25, 30, 35, 36}}},
		{"skip not read past, skipped all", repQueue(32), held{next: 40, runs: []int64{20, 30}}, held{next: 40}},
		{"queue and skip meet", repQueue(25, 24, 22), held{next: 40, runs: []int64{20, 30}}, held{next: 40, runs: []int64{22, 23, 24, 30}}},
	}
	for _, c := range cases {
		got := heldNow(&c.s, &c.skip)
		if !got.equal(c.want) {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
		back, err := parseHeld(appendHeld(nil, got))
		if err != nil || !back.equal(got) {
			t.Errorf("%s: read back as %+v, %v", c.name, back, err)
		}
	}
}

// TestHeldApplied: past the committed offset, a record is applied unless a
// run holds it; from next on nothing is known to be applied.
func TestHeldApplied(t *testing.T) {
	h := held{next: 40, runs: []int64{22, 23, 24, 30, 35, 36}}
	var applied []int64
	for off := int64(18); off < 44; off++ {
		if h.applied(off) {
			applied = append(applied, off)
		}
	}
	want := []int64{18, 19, 20, 21, 23, 30, 31, 32, 33, 34, 36, 37, 38, 39}
	if !slices.Equal(applied, want) {
		t.Errorf("applied %v, want %v", applied, want)
	}
	var zero held
	if zero.applied(0) || zero.applied(100) {
		t.Error("the zero held says a record was applied")
	}
}

// TestParseHeldCorrupt: a held record that cannot be read is an error
// (the restore stops), never a guess.
func TestParseHeldCorrupt(t *testing.T) {
	good := appendHeld(nil, held{next: 40, runs: []int64{22, 23, 24, 30}})
	cases := map[string][]byte{
		"empty":         nil,
		"version":       append([]byte{9}, good[1:]...),
		"truncated":     good[:len(good)-1],
		"trailing":      append(slices.Clone(good), 0),
		"run past next": appendHeld(nil, held{next: 10, runs: []int64{5, 12}}),
		"empty run":     appendHeld(nil, held{next: 40, runs: []int64{5, 5}}),
	}
	for name, b := range cases {
		if _, err := parseHeld(b); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

func FuzzParseHeld(f *testing.F) {
	f.Add(appendHeld(nil, held{}))
	f.Add(appendHeld(nil, held{next: 40, runs: []int64{22, 23, 24, 30}}))
	f.Add(appendHeld(nil, held{next: 1 << 40, runs: []int64{0, 1}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseHeld(b)
		if err != nil {
			return
		}
		// Runs are ascending, non-empty, apart and within next, and
		// what parses is written back the same.
		for i := 1; i < len(h.runs); i++ {
			if h.runs[i] <= h.runs[i-1] || h.runs[i] > h.next {
				t.Fatalf("runs %v with next %d", h.runs, h.next)
			}
		}
		back, err := parseHeld(appendHeld(nil, h))
		if err != nil || !back.equal(h) {
			t.Fatalf("%+v read back as %+v, %v", h, back, err)
		}
	})
}
