package consume

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestAssignTasks: shares are even, members keep what they own up to their
// share, and only the tasks that must move do.
func TestAssignTasks(t *testing.T) {
	member := func(key string, gen int32, owned ...int32) taskMember {
		return taskMember{key: key, meta: &kmsg.ConsumerMemberMetadata{Generation: gen}, owned: owned}
	}
	for _, c := range []struct {
		name string
		ms   []taskMember
		n    int32
		want [][]int32
	}{
		{"a new group: round robin over the members in key order", []taskMember{member("b", 0), member("a", 0), member("c", 0)}, 7,
			[][]int32{{1, 4}, {0, 3, 6}, {2, 5}}},
		{"one of four leaves: its tasks go to the others, nobody loses one",
			[]taskMember{member("a", 3, 0, 4, 8), member("b", 3, 1, 5, 9), member("c", 3, 2, 6, 10)}, 12,
			[][]int32{{0, 3, 4, 8}, {1, 5, 7, 9}, {2, 6, 10, 11}}},
		{"a member joins: each of the others gives up its highest task",
			[]taskMember{member("a", 3, 0, 1, 2, 3), member("b", 3, 4, 5, 6, 7), member("c", 3, 8, 9, 10, 11), member("d", 0)}, 12,
			[][]int32{{0, 1, 2}, {4, 5, 6}, {8, 9, 10}, {3, 7, 11}}},
		{"two claim a task: the higher generation keeps it",
			[]taskMember{member("a", 2, 0, 1), member("b", 3, 1, 2)}, 4,
			[][]int32{{0, 3}, {1, 2}}},
		{"claims past the partition count are ignored",
			[]taskMember{member("a", 1, 0, 7, 9), member("b", 1, 1)}, 3,
			[][]int32{{0, 2}, {1}}},
		{"more members than tasks", []taskMember{member("a", 0), member("b", 0), member("c", 0)}, 2,
			[][]int32{{0}, {1}, nil}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := assignTasks(c.ms, c.n)
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
			seen := map[int32]bool{}
			for _, ps := range got {
				for _, p := range ps {
					if seen[p] {
						t.Errorf("task %d assigned twice", p)
					}
					seen[p] = true
				}
			}
			if len(seen) != int(c.n) {
				t.Errorf("%d of %d tasks assigned", len(seen), c.n)
			}
		})
	}
}

// TestTaskBalancerInAGroup: real members on kfake get partition p of every
// topic together; when a member joins, the members that keep all their
// tasks are never revoked anything, and the moved tasks are revoked from
// their old owner before the new one gets them.
func TestTaskBalancerInAGroup(t *testing.T) {
	const parts = 6
	topics := []string{"orders", "email"}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(parts, topics...))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	type member struct {
		cl      *kgo.Client
		mu      sync.Mutex
		owned   map[string]map[int32]bool
		revoked int // partitions revoked, summed over rebalances
	}
	var all []*member
	join := func(name string) *member {
		m := &member{owned: map[string]map[int32]bool{}}
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumerGroup("g"), kgo.ConsumeTopics(topics...),
			kgo.Balancers(TaskBalancer()), kgo.InstanceID(name), kgo.HeartbeatInterval(100*time.Millisecond),
			kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
				m.mu.Lock()
				defer m.mu.Unlock()
				for topic, ps := range a {
					if m.owned[topic] == nil {
						m.owned[topic] = map[int32]bool{}
					}
					for _, p := range ps {
						m.owned[topic][p] = true
					}
				}
			}),
			kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, r map[string][]int32) {
				m.mu.Lock()
				defer m.mu.Unlock()
				for topic, ps := range r {
					for _, p := range ps {
						delete(m.owned[topic], p)
						m.revoked++
					}
				}
			}),
		)
		if err != nil {
			t.Fatal(err)
		}
		m.cl = cl
		go func() {
			for ctx := context.Background(); ; {
				if cl.PollFetches(ctx).IsClientClosed() {
					return
				}
			}
		}()
		all = append(all, m)
		return m
	}
	defer func() {
		for _, m := range all {
			m.cl.Close()
		}
	}()
	// settled waits until every task is held by exactly one member, with
	// the same partition of every topic, each member holding its share,
	// and returns the tasks per member.
	settled := func(want int) [][]int32 {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			var tasks [][]int32
			count, ok := map[int32]int{}, true
			for _, m := range all[:want] {
				m.mu.Lock()
				o := slices.Sorted(maps.Keys(m.owned["orders"]))
				e := slices.Sorted(maps.Keys(m.owned["email"]))
				m.mu.Unlock()
				ok = ok && slices.Equal(o, e) && len(o) >= parts/want && len(o) <= (parts+want-1)/want
				for _, p := range o {
					count[p]++
				}
				tasks = append(tasks, o)
			}
			for p := range int32(parts) {
				ok = ok && count[p] == 1
			}
			if ok {
				return tasks
			}
			if time.Now().After(deadline) {
				t.Fatalf("not settled: %v", tasks)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	join("a")
	join("b")
	before := settled(2)
	revokedBefore := []int{all[0].revoked, all[1].revoked}
	join("c")
	after := settled(3)
	if len(after[2]) != 2 || len(after[0]) != 2 || len(after[1]) != 2 {
		t.Fatalf("tasks after c joined: %v", after)
	}
	for i := range 2 {
		kept := 0
		for _, p := range after[i] {
			if slices.Contains(before[i], p) {
				kept++
			}
		}
		lost := len(before[i]) - kept
		if kept != len(after[i]) {
			t.Errorf("member %d got a task it did not hold: %v then %v", i, before[i], after[i])
		}
		// Each lost task is revoked on both topics, nothing else is.
		if got := all[i].revoked - revokedBefore[i]; got != 2*lost {
			t.Errorf("member %d: %d partitions revoked for %d tasks moved", i, got, lost)
		}
	}
}
