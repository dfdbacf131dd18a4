package consume

import (
	"cmp"
	"fmt"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TaskBalancer assigns tasks, not partitions: partition p of every
// subscribed topic goes to the member that holds task p, as the
// co-partitioned inputs need. It is sticky and cooperative (KIP-429): a
// member keeps the tasks it holds up to its share, only the tasks that
// move are revoked, and they are assigned in the rebalance that follows
// their revocation. A member that loses nothing goes on processing and
// committing through a rebalance (franz-go's transactional session aborts
// only for a revocation), so an instance that stops or joins moves its
// share of tasks and stops nobody else. Kafka Streams' StreamsPartitionAssignor
// is the model: sticky task assignment with co-partitioned topic groups.
//
// A group moving from an eager balancer to this one needs two rolling
// restarts (docs/production.md, "Rebalancing").
//
// With standby replicas (Config.StandbyReplicas; the Runner wires its
// standby keeper into this balancer), each member also reports the
// standby tasks it keeps in its join metadata, the leader gives a task
// whose owner left to a member keeping a standby of it, and assigns each
// task's standbys (standby_assign.go).
func TaskBalancer() kgo.GroupBalancer { return taskBalancer{} }

// taskBalancer is the balancer; sb is the member's standby keeper, nil
// without standby replicas.
type taskBalancer struct{ sb *standbys }

// ProtocolName names the assignment protocol in the group.
func (taskBalancer) ProtocolName() string { return "winback-tasks" }

// IsCooperative is true: incremental rebalancing.
func (taskBalancer) IsCooperative() bool { return true }

// JoinGroupMetadata is the consumer protocol's metadata (version 3), with
// the partitions the member owns, which the leader keeps where it can.
func (b taskBalancer) JoinGroupMetadata(interests []string, current map[string][]int32, generation int32) []byte {
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Version = 3
	meta.Topics = interests
	meta.Generation = generation
	for _, topic := range slices.Sorted(maps.Keys(current)) {
		owned := kmsg.NewConsumerMemberMetadataOwnedPartition()
		owned.Topic = topic
		owned.Partitions = slices.Sorted(slices.Values(current[topic]))
		meta.OwnedPartitions = append(meta.OwnedPartitions, owned)
	}
	if b.sb != nil {
		meta.UserData = appendTaskList(nil, b.sb.held())
	}
	return meta.AppendTo(nil)
}

// ParseSyncAssignment reads the member's assignment, and hands its tasks
// and the standby tasks in its UserData to the standby keeper. This is
// where franz-go lets a member read what the leader planned for it: the
// member sees only its own assignment (the leader alone sees the member
// list), so the standby lists travel in it rather than being recomputed
// by each member.
func (b taskBalancer) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	var a kmsg.ConsumerMemberAssignment
	if err := a.ReadFrom(assignment); err != nil {
		return nil, fmt.Errorf("sync assignment parse failed: %w", err)
	}
	out := make(map[string][]int32, len(a.Topics))
	var active []int32
	for _, t := range a.Topics {
		out[t.Topic] = append(out[t.Topic], t.Partitions...)
		active = append(active, t.Partitions...)
	}
	if b.sb != nil {
		standby, _ := parseTaskList(a.UserData) // none from a leader without standbys
		slices.Sort(active)
		b.sb.assigned(slices.Compact(active), standby)
	}
	return out, nil
}

// MemberBalancer returns the leader's balancer over members.
func (b taskBalancer) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	cb, err := kgo.NewConsumerBalancer(b, members)
	return cb, cb.MemberTopics(), err
}

// Balance plans the assignment: each task to one member, as evenly as the
// counts allow, members keeping what they own; then, cooperatively, a
// task moving between members is only taken from its owner this round.
func (b taskBalancer) Balance(cb *kgo.ConsumerBalancer, topics map[string]int32) kgo.IntoSyncAssignment {
	ms := make([]taskMember, 0, len(cb.Members()))
	tasks := int32(0)
	for _, n := range topics {
		tasks = max(tasks, n)
	}
	cb.EachMember(func(m *kmsg.JoinGroupResponseMember, meta *kmsg.ConsumerMemberMetadata) {
		tm := taskMember{m: m, meta: meta, key: m.MemberID}
		if m.InstanceID != nil {
			tm.key = *m.InstanceID
		}
		for _, o := range meta.OwnedPartitions {
			tm.owned = append(tm.owned, o.Partitions...)
		}
		slices.Sort(tm.owned)
		tm.owned = slices.Compact(tm.owned)
		tm.warm, _ = parseTaskList(meta.UserData) // none from a member without standbys
		ms = append(ms, tm)
	})
	plan := cb.NewPlan()
	if len(ms) == 0 {
		return plan
	}
	assign := assignTasks(ms, tasks)
	for i := range ms {
		for _, topic := range ms[i].meta.Topics {
			n, ok := topics[topic]
			if !ok {
				continue
			}
			for _, p := range assign[i] {
				if p < n {
					plan.AddPartition(ms[i].m, topic, p)
				}
			}
		}
	}
	plan.AdjustCooperative(cb)
	if b.sb == nil || b.sb.n <= 0 {
		return plan
	}
	return standbyPlan{plan: plan, ms: ms, standby: assignStandbys(ms, assign, tasks, b.sb.n)}
}

// taskMember is a member as the balancer sees it: its stable key (the
// instance id, else the member id) and the tasks it owns.
type taskMember struct {
	m     *kmsg.JoinGroupResponseMember
	meta  *kmsg.ConsumerMemberMetadata
	key   string
	owned []int32
	warm  []int32 // standby tasks it keeps, sorted
}

// assignTasks gives each of tasks 0..n-1 to one member (the result is per
// member, by index in ms): every member n/len(ms) tasks, the first n%len(ms)
// of them (those owning the most, then those keeping standbys of the most
// tasks nobody owns, then by key) one more; a member keeps the
// tasks it owns, lowest first, up to its share; a task two members claim
// stays with the one of the higher generation (then the lower key); the
// rest go, lowest first, to the members with room: one keeping a standby
// of the task first (it takes the task over without a restore: Kafka
// Streams' HighAvailabilityTaskAssignor gives a task to a caught-up
// client likewise), then the one with the fewest.
func assignTasks(ms []taskMember, n int32) [][]int32 {
	order := make([]int, len(ms))
	for i := range order {
		order[i] = i
	}
	claimed := map[int32]bool{}
	for _, m := range ms {
		for _, p := range m.owned {
			claimed[p] = true
		}
	}
	orphans := make([]int, len(ms)) // standbys kept of tasks nobody owns
	for i, m := range ms {
		for _, p := range m.warm {
			if p < n && !claimed[p] {
				orphans[i]++
			}
		}
	}
	slices.SortFunc(order, func(a, b int) int {
		return cmp.Or(cmp.Compare(len(ms[b].owned), len(ms[a].owned)), cmp.Compare(orphans[b], orphans[a]), cmp.Compare(ms[a].key, ms[b].key))
	})
	share := make([]int, len(ms))
	for rank, i := range order {
		share[i] = int(n) / len(ms)
		if rank < int(n)%len(ms) {
			share[i]++
		}
	}
	// The owner of each task: the claimant of the highest generation.
	owner := make(map[int32]int, n)
	for _, i := range order {
		for _, p := range ms[i].owned {
			if p >= n {
				continue
			}
			if o, ok := owner[p]; !ok || ms[i].meta.Generation > ms[o].meta.Generation ||
				(ms[i].meta.Generation == ms[o].meta.Generation && ms[i].key < ms[o].key) {
				owner[p] = i
			}
		}
	}
	out := make([][]int32, len(ms))
	taken := make([]bool, n)
	for p := range n {
		if i, ok := owner[p]; ok && len(out[i]) < share[i] {
			out[i] = append(out[i], p)
			taken[p] = true
		}
	}
	for p := range n {
		if taken[p] {
			continue
		}
		best := -1
		for _, i := range order {
			if len(out[i]) >= share[i] {
				continue
			}
			if best < 0 {
				best = i
				continue
			}
			wi, wb := ms[i].keeps(p), ms[best].keeps(p)
			if wi && !wb || wi == wb && len(out[i]) < len(out[best]) {
				best = i
			}
		}
		out[best] = append(out[best], p)
	}
	for i := range out {
		slices.Sort(out[i])
	}
	return out
}
