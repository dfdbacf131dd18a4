package consume

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/winback/winback/pipeline/lapse"
)

// TestAssignStandbys: each task gets min(replicas, members-1) standbys,
// never its owner nor one member twice, spread evenly; a member keeps the
// standbys it has while within its share; the choice depends on the
// members' keys, not their order.
func TestAssignStandbys(t *testing.T) {
	member := func(key string, warm ...int32) taskMember {
		return taskMember{key: key, m: &kmsg.JoinGroupResponseMember{MemberID: key}, warm: warm}
	}
	for _, c := range []struct {
		name     string
		ms       []taskMember
		assign   [][]int32
		n        int32
		replicas int
		want     [][]int32
	}{
		{"a new group: one owner's standbys spread over the others", []taskMember{member("a"), member("b"), member("c")},
			[][]int32{{0, 3}, {1, 4}, {2, 5}}, 6, 1,
			[][]int32{{2, 4}, {0, 5}, {1, 3}}},
		{"two replicas: every other member", []taskMember{member("a"), member("b"), member("c")},
			[][]int32{{0, 3}, {1, 4}, {2, 5}}, 6, 2,
			[][]int32{{1, 2, 4, 5}, {0, 2, 3, 5}, {0, 1, 3, 4}}},
		{"warm copies stay where they are", []taskMember{member("a", 1, 5), member("b", 2, 3), member("c", 0, 4)},
			[][]int32{{0, 3}, {1, 4}, {2, 5}}, 6, 1,
			[][]int32{{1, 5}, {2, 3}, {0, 4}}},
		{"a warm member past its share gives the rest up", []taskMember{member("a", 1, 2, 4, 5), member("b"), member("c")},
			[][]int32{{0, 3}, {1, 4}, {2, 5}}, 6, 1,
			[][]int32{{1, 2}, {0, 5}, {3, 4}}},
		{"warm copies of one owner's tasks spread out", []taskMember{member("a", 0, 1, 2), member("b", 3, 4, 5), member("c")},
			[][]int32{{2, 4}, {0, 1}, {3, 5}}, 6, 1,
			[][]int32{{0, 5}, {3, 4}, {1, 2}}},
		{"a full member hands a standby over", []taskMember{member("a", 1), member("b"), member("c")},
			[][]int32{{0}, {1}, {2}}, 3, 1,
			[][]int32{{2}, {0}, {1}}},
		{"a member keeps one warm copy of one owner's tasks", []taskMember{member("a"), member("b", 0, 2, 3), member("c")},
			[][]int32{{0, 3}, {1, 4}, {2, 5}}, 6, 1,
			[][]int32{{4, 5}, {0, 2}, {1, 3}}},
		{"more replicas than other members", []taskMember{member("a"), member("b")},
			[][]int32{{0}, {1}}, 2, 3,
			[][]int32{{1}, {0}}},
		{"one member: no standby", []taskMember{member("a")}, [][]int32{{0, 1}}, 2, 1, [][]int32{nil}},
		{"fewest standbys, then fewest active tasks", []taskMember{member("a"), member("b"), member("c")},
			[][]int32{{0, 1}, {2}, nil}, 3, 1,
			[][]int32{{2}, {1}, {0}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for i := range c.ms {
				c.ms[i].owned = c.assign[i]
			}
			got := assignStandbys(c.ms, c.assign, c.n, c.replicas)
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
			k := min(c.replicas, len(c.ms)-1)
			count := map[int32]int{}
			for i, ps := range got {
				for _, p := range ps {
					count[p]++
					if slices.Contains(c.assign[i], p) {
						t.Errorf("member %s is both owner and standby of task %d", c.ms[i].key, p)
					}
				}
				if len(slices.Compact(slices.Clone(ps))) != len(ps) {
					t.Errorf("member %s has a standby twice: %v", c.ms[i].key, ps)
				}
			}
			for p := range c.n {
				if count[p] != k {
					t.Errorf("task %d has %d standbys, want %d", p, count[p], k)
				}
			}
			for i, ps := range got {
				if share := (int(c.n)*k + len(c.ms) - 1) / len(c.ms); len(ps) > share {
					t.Errorf("member %s keeps %d standbys, more than its share %d", c.ms[i].key, len(ps), share)
				}
			}
			// The same members in another order get the same standbys.
			rev := slices.Clone(c.ms)
			slices.Reverse(rev)
			ra := slices.Clone(c.assign)
			slices.Reverse(ra)
			again := assignStandbys(rev, ra, c.n, c.replicas)
			for i := range rev {
				if j := len(rev) - 1 - i; !slices.Equal(again[i], got[j]) {
					t.Errorf("member %s: %v in reverse order, %v in order", rev[i].key, again[i], got[j])
				}
			}
		})
	}
}

// TestAssignTasksToStandby: a task whose owner left goes to a member with
// room that keeps a standby of it, not to the one that would otherwise
// come first.
func TestAssignTasksToStandby(t *testing.T) {
	m := func(key string, owned, warm []int32) taskMember {
		return taskMember{key: key, meta: &kmsg.ConsumerMemberMetadata{Generation: 4}, owned: owned, warm: warm}
	}
	// c owned 4 and 5 and is gone: 4's standby is on b, 5's on a.
	ms := []taskMember{m("a", []int32{0, 1}, []int32{3, 5}), m("b", []int32{2, 3}, []int32{0, 4})}
	got := assignTasks(ms, 6)
	if want := [][]int32{{0, 1, 5}, {2, 3, 4}}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	// Five left of six, with 12 tasks: two get a third task, those keeping
	// standbys of the tasks of the one that left (f: 10, 11).
	ms5 := []taskMember{m("a", []int32{0, 1}, []int32{2}), m("b", []int32{2, 3}, []int32{10}), m("c", []int32{4, 5}, nil),
		m("d", []int32{6, 7}, []int32{11}), m("e", []int32{8, 9}, []int32{0})}
	if got, want := assignTasks(ms5, 12), [][]int32{{0, 1}, {2, 3, 10}, {4, 5}, {6, 7, 11}, {8, 9}}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("five of six: got %v, want %v", got, want)
	}
	// Without standbys, lowest first to the members in order.
	ms[0].warm, ms[1].warm = nil, nil
	if got, want := assignTasks(ms, 6), [][]int32{{0, 1, 4}, {2, 3, 5}}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("without standbys: got %v, want %v", got, want)
	}
}

func TestTaskList(t *testing.T) {
	for _, tasks := range [][]int32{nil, {0}, {1, 5, 7}, {2147483647}} {
		got, err := parseTaskList(appendTaskList(nil, tasks))
		if err != nil || !slices.Equal(got, tasks) {
			t.Errorf("%v: got %v, %v", tasks, got, err)
		}
	}
	for _, b := range [][]byte{{2, 0, 0, 0, 0}, {1, 0, 0}, {1, 0, 0, 0, 2, 0, 0, 0, 1}, {1, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff}} {
		if got, err := parseTaskList(b); err == nil {
			t.Errorf("%x: parsed as %v", b, got)
		}
	}
}

// TestStandbyAssignmentRoundTrip: the leader's plan, from the members'
// join metadata (with the standbys they keep), reaches each member's
// ParseSyncAssignment with its tasks and its standby list; a member
// without standbys reads its tasks only.
func TestStandbyAssignmentRoundTrip(t *testing.T) {
	keeper := func(kept ...int32) taskBalancer {
		k := newStandbys(nil, 1)
		for _, p := range kept {
			k.kept[p] = &standby{p: p}
		}
		return taskBalancer{sb: k}
	}
	// c left; a keeps a standby of 5, b of 4 and 2; a owns 0, 1 and b 2, 3.
	bals := map[string]taskBalancer{"a": keeper(5), "b": keeper(4)}
	owned := map[string][]int32{"a": {0, 1}, "b": {2, 3}}
	var members []kmsg.JoinGroupResponseMember
	for _, id := range []string{"a", "b"} {
		m := kmsg.NewJoinGroupResponseMember()
		m.MemberID, m.InstanceID = id, kmsg.StringPtr(id)
		m.ProtocolMetadata = bals[id].JoinGroupMetadata([]string{"orders", "email"}, map[string][]int32{"orders": owned[id], "email": owned[id]}, 7)
		members = append(members, m)
	}
	leader := bals["a"]
	cb, err := kgo.NewConsumerBalancer(leader, members)
	if err != nil {
		t.Fatal(err)
	}
	sync := leader.Balance(cb, map[string]int32{"orders": 6, "email": 6}).IntoSyncAssignment()
	got := map[string]string{}
	for _, a := range sync {
		var ma kmsg.ConsumerMemberAssignment
		if err := ma.ReadFrom(a.MemberAssignment); err != nil {
			t.Fatal(err)
		}
		standby, err := parseTaskList(ma.UserData)
		if err != nil {
			t.Fatal(err)
		}
		tasks, err := TaskBalancer().ParseSyncAssignment(a.MemberAssignment) // an instance without standbys
		if err != nil {
			t.Fatal(err)
		}
		got[a.MemberID] = fmt.Sprintf("orders %v email %v standby %v", tasks["orders"], tasks["email"], standby)
	}
	want := map[string]string{
		"a": "orders [0 1 5] email [0 1 5] standby [2 3 4]",
		"b": "orders [2 3 4] email [2 3 4] standby [0 1 5]",
	}
	if !maps.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// TestStandbyTakeover: a standby fed the changelog in fetches holds what a restore of
// the same records holds; take hands over its task and next offset once,
// and a dropped standby applies nothing more.
func TestStandbyTakeover(t *testing.T) {
	wall := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	r := truthRunner(nopSink{}, wall)
	r.log = slog.New(slog.DiscardHandler)
	src := lapse.NewEngine(lapse.DefaultConfig(), 3, wall)
	var recs []*kgo.Record
	for i := range 500 {
		id := "c" + strconv.Itoa(i%120)
		recs = append(recs, &kgo.Record{Topic: "st", Partition: 3, Offset: int64(i), Key: []byte(id), Value: snapshotOf(t, src, id, i)})
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	k := newStandbys(r, 1)
	r.standby = k
	k.open(cl)
	k.assigned([]int32{0}, []int32{3})
	if got := k.held(); !slices.Equal(got, []int32{3}) {
		t.Fatalf("held %v, want [3]", got)
	}
	s := k.kept[3]
	fetch := func(recs ...*kgo.Record) kgo.FetchTopicPartition {
		return kgo.FetchTopicPartition{Topic: "st", FetchPartition: kgo.FetchPartition{Partition: 3, Records: recs, LastStableOffset: 501}}
	}
	if err := k.apply(s, fetch(recs[:300]...)); err != nil {
		t.Fatal(err)
	}
	// A refetch overlapping what was applied applies each record once.
	if err := k.apply(s, fetch(recs[250:]...)); err != nil {
		t.Fatal(err)
	}
	tk, next, ok := k.take(3)
	if !ok || next != 500 {
		t.Fatalf("take: next %d, ok %v; want 500, true", next, ok)
	}
	if _, _, ok := k.take(3); ok || len(k.held()) != 0 {
		t.Error("a standby was taken twice")
	}
	full := r.newTask(3, inputPositions{})
	for _, rec := range recs {
		if err := full.restoreRecord(rec); err != nil {
			t.Fatal(err)
		}
	}
	if tk.eng.Len() != full.eng.Len() || tk.eng.Len() != 120 {
		t.Fatalf("standby holds %d customers, restore %d, want 120", tk.eng.Len(), full.eng.Len())
	}
	for i := range 120 {
		id := "c" + strconv.Itoa(i)
		if a, b := tk.eng.AppendSnapshot(nil, tk.eng.Customer(id)), full.eng.AppendSnapshot(nil, full.eng.Customer(id)); string(a) != string(b) {
			t.Fatalf("%s differs between the standby and the restore", id)
		}
	}
	// Unassigned: dropped, and its records no longer applied.
	k.assigned(nil, []int32{3})
	s = k.kept[3]
	k.assigned(nil, nil)
	if err := k.apply(s, fetch(recs[:10]...)); err != nil || s.t != nil || s.next != 0 || len(k.held()) != 0 {
		t.Errorf("a dropped standby: err %v, next %d, held %v", err, s.next, k.held())
	}
	// A record that cannot be applied makes the standby unusable.
	k.assigned(nil, []int32{3})
	s = k.kept[3]
	bad := &kgo.Record{Topic: "st", Partition: 3, Offset: 0, Key: []byte("c0"), Value: []byte{3}}
	if err := k.apply(s, fetch(bad)); err == nil {
		t.Fatal("a corrupt record applied")
	}
	if _, _, ok := k.take(3); ok {
		t.Error("a standby that failed was taken")
	}
}
