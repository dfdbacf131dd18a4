package merge

import "testing"

// BenchmarkPick: one pick among a task's five inputs (three queued, two
// read to their end) and the pop that follows.
func BenchmarkPick(b *testing.B) {
	var qs [5]Queue[Key]
	for i := range 3 {
		for j := range 1000 {
			*qs[i].Add() = Key{Time: int64(j*3 + i), Rank: i}
		}
	}
	var lanes [5]Lane
	b.ReportAllocs()
	for b.Loop() {
		for i := range qs {
			lanes[i] = Lane{Len: qs[i].Len()}
			if lanes[i].Len > 0 {
				lanes[i].Head = *qs[i].Peek()
			}
		}
		i := Pick(lanes[:])
		k := *qs[i].Pop()
		k.Time += 3000 // back in at the tail: the queues never empty
		*qs[i].Add() = k
	}
}
