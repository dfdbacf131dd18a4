package merge

import "time"

// Key is what Pick compares of a queue's first record.
type Key struct {
	Time int64 // event time, Unix ms
	Rank int   // orders records of the same event time: the lower first
	Bad  bool  // bad input, with no event time: it goes at once
}

// before reports whether a record with key k goes before one with key o
// (of a later lane, when they tie).
func (k Key) before(o Key) bool {
	return k.Time < o.Time || (k.Time == o.Time && k.Rank < o.Rank)
}

// Lane is one input of a task as Pick sees it.
type Lane struct {
	Len  int  // records queued
	Head Key  // the first one's, when Len > 0
	Wait bool // when Len is 0: the input may still deliver an earlier record (Position.Waits)
}

// Pick returns the index of the lane whose head goes next, or -1 when
// none may go yet. The head with the lowest event time goes next; ties go
// to the lower rank, then to the lower lane. The lanes are taken in
// order: an empty lane that waits stops the merge, and a bad head (no
// event time) before it leaves at once, so that bad input leaves in its
// offset order without waiting for the other inputs.
func Pick(lanes []Lane) int {
	best := -1
	for i := range lanes {
		l := &lanes[i]
		if l.Len == 0 {
			if l.Wait {
				return -1
			}
			continue
		}
		if l.Head.Bad {
			return i
		}
		if best < 0 || l.Head.before(lanes[best].Head) {
			best = i
		}
	}
	return best
}

// Position is how far an input partition has been read, and where it
// ends.
type Position struct {
	Next int64     // offset after the last record fetched; -1 unknown
	End  int64     // the last stable offset when last seen (read_committed's end); -1 unknown
	Seen time.Time // when End was last learned, or reading started
}

// Waits reports whether an empty input at p may still deliver an event
// earlier than the other inputs' heads, so that they must wait for it:
// while it has not fetched up to the end it last saw (Kafka Streams'
// KIP-695 rule: never run ahead of an input the broker shows has data not
// yet fetched). An input whose end is unknown (no fetch or listing has
// answered yet) holds the others back for idle after Seen, then lets them
// go (max.task.idle.ms).
func (p Position) Waits(now time.Time, idle time.Duration) bool {
	if p.End < 0 {
		return now.Sub(p.Seen) < idle
	}
	return p.Next < p.End
}
