package merge

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// in is one input of a test task: its queued heads and its position.
type in struct {
	keys []Key
	pos  Position
}

// at queues records at the given event times with the lane's rank; the
// partition was read to its end (the records are all it has).
func at(rank int, times ...int64) in {
	n := int64(len(times))
	l := in{pos: Position{Next: n, End: n}}
	for _, t := range times {
		l.keys = append(l.keys, Key{Time: t, Rank: rank})
	}
	return l
}

// behind makes the input's partition hold more than was fetched.
func (l in) behind() in { l.pos.End = l.pos.Next + 5; return l }

// unknown makes the input's end unknown since t0.
func (l in) unknown() in { l.pos.End = -1; return l }

var t0 = time.Unix(1000, 0)

const idle = 10 * time.Second

// merge drains the inputs as a task does at wall time now: "lane:time"
// for each record applied, in order, then "held" with what is left when
// the merge stops with records queued.
func merge(ins []in, now time.Time) string {
	qs := make([]Queue[Key], len(ins))
	for i, l := range ins {
		for _, k := range l.keys {
			*qs[i].Add() = k
		}
	}
	lanes := make([]Lane, len(ins))
	var out []string
	for {
		for i := range qs {
			lanes[i] = Lane{Len: qs[i].Len()}
			if lanes[i].Len > 0 {
				lanes[i].Head = *qs[i].Peek()
			} else {
				p := ins[i].pos
				p.Seen = t0
				lanes[i].Wait = p.Waits(now, idle)
			}
		}
		i := Pick(lanes)
		if i < 0 {
			break
		}
		k := qs[i].Pop()
		if k.Bad {
			out = append(out, fmt.Sprintf("%d:bad", i))
		} else {
			out = append(out, fmt.Sprintf("%d:%d", i, k.Time))
		}
	}
	left := 0
	for i := range qs {
		left += qs[i].Len()
	}
	if left > 0 {
		out = append(out, fmt.Sprintf("held %d", left))
	}
	return strings.Join(out, " ")
}

// TestMerge: golden cases of the merge order and its hold-back rule, as
// consume's tasks and replay's see them. Lanes 0-2 are the orders, e-mail
// and support inputs (rank 0-2); lane 3, where there is one, is an input
// of any kind (the repartition topic: the rank is the record's kind).
func TestMerge(t *testing.T) {
	bad := func(l in) in { l.keys = append([]Key{{Bad: true}}, l.keys...); return l }
	for _, tc := range []struct {
		name string
		ins  []in
		now  time.Duration // after t0
		want string
	}{
		{"by event time", []in{at(0, 10, 30, 50), at(1, 20, 30), at(2, 5)}, 0,
			"2:5 0:10 1:20 0:30 1:30 0:50"},
		{"ties to the lower rank", []in{at(2, 7), at(1, 7), at(0, 7)}, 0,
			"2:7 1:7 0:7"},
		{"equal rank ties to the lower lane", []in{at(0, 7, 9), at(1), at(2), at(0, 7, 8)}, 0,
			"0:7 3:7 3:8 0:9"},
		{"a quiet input read to its end holds nothing back", []in{at(0, 10, 20), at(1), at(2)}, 0,
			"0:10 0:20"},
		{"an empty input behind its end holds everything back", []in{at(0, 10, 20), at(1).behind(), at(2, 5)}, 0,
			"held 3"},
		{"an input runs until it empties, then waits for its end", []in{at(0, 10).behind(), at(1, 20, 30)}, 0,
			"0:10 held 2"},
		{"end of partition: the others go on", []in{at(0, 10), at(1, 20, 30)}, 0,
			"0:10 1:20 1:30"},
		{"unknown end holds back within the idle time", []in{at(0, 10, 20), at(1).unknown()}, idle - time.Millisecond,
			"held 2"},
		{"unknown end: the hold-back expires", []in{at(0, 10, 20), at(1).unknown()}, idle,
			"0:10 0:20"},
		{"an unknown end with records queued waits for nothing", []in{at(0, 10, 30), at(1, 20).unknown()}, 0,
			"0:10 1:20 held 1"},
		{"bad input leaves at once", []in{at(0, 10), bad(at(1, 5)), at(2, 1)}, 0,
			"1:bad 2:1 1:5 0:10"},
		{"bad input after a waiting input waits", []in{at(0).behind(), bad(at(1))}, 0,
			"held 1"},
		{"bad input before a waiting input leaves", []in{bad(at(0)), at(1).behind()}, 0,
			"0:bad"},
		{"nothing queued", []in{at(0), at(1), at(2)}, 0, ""},
	} {
		if got := merge(tc.ins, t0.Add(tc.now)); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

func TestWaits(t *testing.T) {
	f := func(p Position, now time.Duration, want bool) {
		t.Helper()
		p.Seen = t0
		if got := p.Waits(t0.Add(now), idle); got != want {
			t.Errorf("%+v at +%s: waits %v, want %v", p, now, got, want)
		}
	}
	f(Position{Next: 3, End: 5}, 0, true)            // behind its end
	f(Position{Next: 3, End: 5}, time.Hour, true)    // ... for as long as it takes
	f(Position{Next: 5, End: 5}, 0, false)           // read to its end
	f(Position{Next: -1, End: 5}, 0, true)           // not read yet
	f(Position{Next: 7, End: 5}, 0, false)           // past an end seen earlier
	f(Position{Next: -1, End: -1}, 0, true)          // end unknown
	f(Position{Next: -1, End: -1}, idle-1, true)     // ... within the idle time
	f(Position{Next: -1, End: -1}, idle, false)      // ... and after it
	f(Position{Next: 4, End: -1}, 2*idle, false)     // position known, end not
	f(Position{Next: -1, End: -1}, -time.Hour, true) // a clock that went back
}
