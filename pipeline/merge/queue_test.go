package merge

import (
	"slices"
	"testing"
)

// TestQueue: the queue stays first in, first out across chunk boundaries
// while it never empties, holds chunks for what is queued rather than for
// what was ever added, and allocates nothing once a steady stream runs.
func TestQueue(t *testing.T) {
	var q Queue[int64]
	next, want, most := int64(0), int64(0), 0
	pop := func() {
		t.Helper()
		if got := *q.Pop(); got != want {
			t.Fatalf("popped %d, want %d", got, want)
		}
		want++
	}
	for range 500 {
		for range 7 {
			*q.Add() = next
			next++
		}
		for range 6 { // one more queued each round: never empty
			pop()
		}
		if q.Len() != int(next-want) {
			t.Fatalf("len %d, want %d", q.Len(), next-want)
		}
		for i := range q.Len() {
			if got := *q.At(i); got != want+int64(i) {
				t.Fatalf("At(%d) = %d, want %d", i, got, want+int64(i))
			}
		}
		most = max(most, q.Len())
	}
	if n, bound := len(q.chunks), most/chunkLen+2; n > bound {
		t.Fatalf("%d chunks for at most %d queued", n, most)
	}
	round := func() {
		for range 1000 { // four chunks' worth in and out
			*q.Add() = next
			next++
		}
		for range 1000 {
			pop()
		}
	}
	round()
	// AllocsPerRun counts the whole process's mallocs, so a goroutine of
	// the runtime can add one now and then; a queue that allocates does
	// so in every round.
	noisy := 0
	for range 20 {
		if n := testing.AllocsPerRun(1, round); n != 0 {
			noisy++
		}
	}
	if noisy > 2 {
		t.Fatalf("%d of 20 rounds below the peak allocated, want none", noisy)
	}
	for q.Len() > 0 {
		pop()
	}
	if want != next {
		t.Fatalf("drained at %d, want %d", want, next)
	}
	*q.Add() = 1
	if q.Len() != 1 || *q.Peek() != 1 {
		t.Fatalf("after draining: len %d", q.Len())
	}
}

// TestAddZeroes: Add hands out a zero entry, also in a reused chunk.
func TestAddZeroes(t *testing.T) {
	var q Queue[[2]int]
	for range 3 * chunkLen {
		*q.Add() = [2]int{7, 7}
	}
	for q.Len() > 0 {
		q.Pop()
	}
	for range 3 * chunkLen {
		if e := q.Add(); *e != [2]int{} {
			t.Fatalf("Add returned %v, want a zero entry", *e)
		}
	}
}

// TestDropLast: DropLast takes back the last Add across chunk boundaries,
// and an emptied queue starts over.
func TestDropLast(t *testing.T) {
	var q Queue[int]
	for i := range 300 {
		*q.Add() = i
	}
	for range 45 {
		q.DropLast()
	}
	if q.Len() != 255 || *q.At(254) != 254 || len(q.chunks) != 1 {
		t.Fatalf("after dropping: len %d, last %d, %d chunks", q.Len(), *q.At(q.Len() - 1), len(q.chunks))
	}
	*q.Add() = 1000
	if q.Len() != 256 || *q.At(255) != 1000 {
		t.Fatalf("add after DropLast: len %d, last %d", q.Len(), *q.At(255))
	}
	var got []int
	for range 3 {
		got = append(got, *q.Pop())
	}
	if !slices.Equal(got, []int{0, 1, 2}) {
		t.Fatalf("popped %v", got)
	}
	var r Queue[int]
	*r.Add() = 1
	r.DropLast()
	if r.Len() != 0 {
		t.Fatalf("len %d after dropping the only entry", r.Len())
	}
	*r.Add() = 2
	if r.Len() != 1 || *r.Peek() != 2 {
		t.Fatalf("after starting over: len %d, head %d", r.Len(), *r.Peek())
	}
}
