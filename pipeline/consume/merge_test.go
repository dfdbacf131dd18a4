package consume

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// queue builds a source holding events at the given event times, read up
// to next of a partition whose high watermark is hwm.
func queue(next, hwm int64, times ...int64) source {
	s := source{next: next, hwm: hwm, seen: time.Unix(0, 0)}
	for i, t := range times {
		q := queued{off: int64(i)}
		q.ev.Time = t
		s.push(q)
	}
	return s
}

func TestPick(t *testing.T) {
	now := time.Unix(0, 0)
	f := func(name string, src [3]source, want []int) {
		t.Helper()
		tk := &task{src: src}
		var got []int
		for {
			i := tk.pick(now)
			if i < 0 {
				break
			}
			tk.src[i].pop()
			got = append(got, i)
		}
		if len(got) != len(want) {
			t.Errorf("%s: picked %v, want %v", name, got, want)
			return
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s: picked %v, want %v", name, got, want)
				return
			}
		}
	}
	// All caught up: lowest event time first, ties to the lower source.
	f("merge", [3]source{queue(3, 3, 10, 30, 50), queue(2, 2, 20, 30), queue(1, 1, 5)},
		[]int{2, 0, 1, 0, 1, 0})
	// An empty source behind its high watermark holds the others back.
	f("hold", [3]source{queue(2, 2, 10, 20), queue(4, 9), queue(0, 0)}, nil)
	// An empty source that has read everything does not.
	f("caught up", [3]source{queue(2, 2, 10, 20), queue(9, 9), queue(0, 0)}, []int{0, 0})
	// A non-empty source may run ahead until it empties, then holds back.
	f("until empty", [3]source{queue(1, 5, 10), queue(1, 1, 20), queue(0, 0)}, []int{0})
	// Bad input (no event time) leaves at once, in offset order.
	bad := queue(1, 1, 0)
	bad.q[0].rec = &kgo.Record{}
	f("bad first", [3]source{queue(1, 1, 10), bad, queue(0, 0)}, []int{1, 0})
}

func TestMayHoldBackUnknownHighWatermark(t *testing.T) {
	s := source{next: -1, hwm: -1, seen: time.Unix(100, 0)}
	if !s.mayHoldBack(time.Unix(100, 0).Add(taskIdle / 2)) {
		t.Error("a source with an unknown position should hold back at first")
	}
	if s.mayHoldBack(time.Unix(100, 0).Add(taskIdle + time.Millisecond)) {
		t.Error("a source with an unknown position should stop holding back after taskIdle")
	}
}

func TestPartitionOfIsMurmur2(t *testing.T) {
	// The lookup API must place a customer where the producers' default
	// partitioner (franz-go's, Kafka's murmur2) put its records.
	k := Partitioner()
	for _, id := range []string{"c000001", "c000002", "customer-42"} {
		a, b := PartitionOf(id, 6), k.Of(id, 6)
		want := int32(kgo.StickyKeyPartitioner(nil).ForTopic("t").Partition(&kgo.Record{Key: []byte(id)}, 6))
		if a != want || b != want {
			t.Errorf("%s: PartitionOf %d, KeyPartitioner %d, franz-go %d", id, a, b, want)
		}
	}
	if k.Of("c", 0) != -1 {
		t.Error("no partitions must give -1")
	}
}
