package consume

import (
	"cmp"
	"encoding/binary"
	"errors"
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// How standbys are placed, after Kafka Streams (KIP-441: the
// HighAvailabilityTaskAssignor and its standby assignor):
//
//   - A member reports the standby tasks it keeps in its join metadata's
//     UserData (Streams reports its tasks' changelog offsets in its
//     subscription likewise).
//   - The leader gives a task whose owner left to a member with room that
//     keeps a standby of it (assignTasks): the standby is, by construction,
//     the member that takes the task over, and it does so without a
//     restore.
//   - The leader then gives each task up to N standbys among the members
//     other than its owner (assignStandbys), and sends each member its
//     list in its assignment's UserData, which the member reads in
//     ParseSyncAssignment. franz-go shows only the leader the member list
//     (a member sees its own assignment, nothing else), so the members
//     could not compute the lists themselves without asking the broker to
//     describe the group; the leader's plan is also the only one that
//     knows which tasks are about to move.
//
// An older member ignores the UserData (kgo.ParseConsumerSyncAssignment
// does), so a group can turn standbys on in a rolling restart.

// taskListVersion heads an encoded task list.
const taskListVersion = 1

var errTaskList = errors.New("consume: malformed standby task list")

// appendTaskList appends tasks (sorted) in the UserData encoding: a
// version byte, a count (uint32) and the tasks (int32), big endian. No
// tasks encode as nothing.
func appendTaskList(dst []byte, tasks []int32) []byte {
	if len(tasks) == 0 {
		return dst
	}
	dst = append(dst, taskListVersion)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(tasks)))
	for _, p := range tasks {
		dst = binary.BigEndian.AppendUint32(dst, uint32(p))
	}
	return dst
}

// parseTaskList reads what appendTaskList wrote; empty input is no tasks.
// The tasks come back sorted, without duplicates or negative numbers.
func parseTaskList(b []byte) ([]int32, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if b[0] != taskListVersion || len(b) < 5 {
		return nil, errTaskList
	}
	n := binary.BigEndian.Uint32(b[1:5])
	if uint64(len(b)-5) != 4*uint64(n) {
		return nil, errTaskList
	}
	out := make([]int32, 0, n)
	for i := range int(n) {
		p := int32(binary.BigEndian.Uint32(b[5+4*i:]))
		if p < 0 {
			return nil, errTaskList
		}
		out = append(out, p)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// keeps reports whether the member keeps a standby of task p.
func (m *taskMember) keeps(p int32) bool {
	_, ok := slices.BinarySearch(m.warm, p)
	return ok
}

// assignStandbys gives each of tasks 0..n-1 up to replicas standbys (the
// result is per member, by index in ms, sorted), never its owner in assign,
// nor one member twice, each member at most its share
// (ceil(n*replicas/members)) where the owners allow it:
//
//  1. a member that already keeps a standby of a task keeps it, within its
//     share, and within its share of the owner's tasks (ceil(tasks of the
//     owner*replicas/(members-1))): a warm copy stays where it is, so a
//     rebalance does not throw standbys away, unless it would leave one
//     member with the standbys of several tasks of one owner, of which it
//     could take over only one;
//  2. every other standby goes to the member with the fewest standbys so
//     far (Streams' standby assignor picks the least loaded client
//     likewise); then to the one with the fewest standbys of the same
//     owner's tasks: when the owner fails, each member with room takes
//     one of its tasks, so its standbys had better be spread; then to the
//     one with the fewest active tasks: the leader fills the members with
//     the fewest tasks first, so that is the member most likely to take
//     the task over anyway; then to the first after the owner in key
//     order (instance ids), a ring;
//  3. when that member is full and the one with room cannot take the task
//     (it owns it, or keeps it already), the full member hands one of its
//     standbys to the one with room first.
//
// The choice depends only on the members' keys, tasks and standbys, so a
// group with the same members gets the same standbys in every rebalance.
func assignStandbys(ms []taskMember, assign [][]int32, n int32, replicas int) [][]int32 {
	out := make([][]int32, len(ms))
	k := min(replicas, len(ms)-1)
	if k <= 0 || n <= 0 {
		return out
	}
	owner := make([]int, n)
	for p := range owner {
		owner[p] = -1
	}
	for i, ps := range assign {
		for _, p := range ps {
			owner[p] = i
		}
	}
	ring := make([]int, len(ms)) // rank of each member in key order
	byKey := make([]int, len(ms))
	for i := range byKey {
		byKey[i] = i
	}
	slices.SortFunc(byKey, func(a, b int) int { return cmp.Compare(ms[a].key, ms[b].key) })
	for rank, i := range byKey {
		ring[i] = rank
	}
	share := (int(n)*k + len(ms) - 1) / len(ms)
	count := make([]int, n)
	can := func(i int, p int32) bool { return i != owner[p] && !slices.Contains(out[i], p) }
	give := func(i int, p int32) { out[i] = append(out[i], p); count[p]++ }
	sameOwner := func(i int, p int32) int { // i's standbys of tasks of p's owner
		c := 0
		for _, q := range out[i] {
			if owner[q] == owner[p] {
				c++
			}
		}
		return c
	}
	for p := range n {
		ownerShare := k
		if o := owner[p]; o >= 0 {
			ownerShare = (len(assign[o])*k + len(ms) - 2) / (len(ms) - 1)
		}
		for _, i := range byKey {
			if count[p] < k && can(i, p) && ms[i].keeps(p) && len(out[i]) < share && sameOwner(i, p) < ownerShare {
				give(i, p)
			}
		}
	}
	for p := range n {
		after := func(i int) int { // distance from the owner along the ring
			if owner[p] < 0 {
				return ring[i]
			}
			return (ring[i] - ring[owner[p]] + len(ms)) % len(ms)
		}
		for count[p] < k {
			best := -1
			for i := range ms {
				if can(i, p) && (best < 0 || cmp.Or(cmp.Compare(len(out[i]), len(out[best])), cmp.Compare(sameOwner(i, p), sameOwner(best, p)),
					cmp.Compare(len(assign[i]), len(assign[best])), cmp.Compare(after(i), after(best))) < 0) {
					best = i
				}
			}
			if best < 0 {
				break
			}
			if len(out[best]) >= share {
				makeRoom(out, best, byKey, share, can)
			}
			give(best, p)
		}
	}
	for i := range out {
		slices.Sort(out[i])
	}
	return out
}

// makeRoom moves one of full member b's standbys to the first member, in
// key order, that has room and can take it, if there is one.
func makeRoom(out [][]int32, b int, byKey []int, share int, can func(int, int32) bool) {
	for _, u := range byKey {
		if len(out[u]) >= share {
			continue
		}
		for j, q := range out[b] {
			if can(u, q) {
				out[b] = slices.Delete(out[b], j, j+1)
				out[u] = append(out[u], q)
				return
			}
		}
	}
}

// standbyPlan is a balance plan with each member's standby tasks, which
// go in the UserData of its assignment.
type standbyPlan struct {
	plan    *kgo.BalancePlan
	ms      []taskMember
	standby [][]int32 // by index in ms
}

// IntoSyncAssignment is the plan's assignments, with the standby lists.
func (s standbyPlan) IntoSyncAssignment() []kmsg.SyncGroupRequestGroupAssignment {
	byID := make(map[string][]int32, len(s.ms))
	for i, m := range s.ms {
		byID[m.m.MemberID] = s.standby[i]
	}
	out := s.plan.IntoSyncAssignment()
	for i := range out {
		tasks := byID[out[i].MemberID]
		if len(tasks) == 0 {
			continue
		}
		var a kmsg.ConsumerMemberAssignment
		if err := a.ReadFrom(out[i].MemberAssignment); err != nil {
			continue // franz-go encoded it; it reads back
		}
		a.UserData = appendTaskList(nil, tasks)
		out[i].MemberAssignment = a.AppendTo(nil)
	}
	return out
}
