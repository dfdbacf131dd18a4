package consume

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// standbys keeps this member's standby tasks (Config.StandbyReplicas):
// warm copies of tasks other members own, each rebuilt from its changelog
// partition and kept current by tailing it, read_committed, in the
// background, with the restore's own code (task.restoreRecord). When the
// group gives this member one of them, the restore takes the copy and
// reads only the changelog's tail, from where the copy stands to the last
// stable offset (restoreTasks), instead of the whole partition.
//
// A standby is dropped when the assignment no longer lists it, when a
// record cannot be applied (the full restore then reports it), and when it
// falls behind the log: its next offset is no longer in the partition
// (records deleted by retention or DeleteRecords that it had not read), so
// its copy may lack them; it then starts over from the log start. Its
// memory is the task's state: about what the owner holds for the task.
type standbys struct {
	r *Runner
	n int // standby replicas per task (0: none)

	mu   sync.Mutex
	cl   *kgo.Client // reads the standby partitions; nil outside a session
	kept map[int32]*standby
}

// standby is one warm copy.
type standby struct {
	p    int32
	mu   sync.Mutex // held while records are applied
	t    *task
	next int64 // the next changelog offset to apply
	lso  int64 // the partition's last stable offset, as last seen
	gone bool  // taken or dropped: apply nothing more
	err  error // a record could not be applied
}

func newStandbys(r *Runner, n int) *standbys {
	return &standbys{r: r, n: n, kept: map[int32]*standby{}}
}

// held returns the standby tasks kept now, sorted (for the join metadata).
func (k *standbys) held() []int32 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Sorted(maps.Keys(k.kept))
}

// assigned applies an assignment: active tasks and standby tasks. It
// starts the standbys not kept yet and drops those no longer listed, but
// keeps those that became active, for the restore to take.
func (k *standbys) assigned(active, standby []int32) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cl == nil {
		return
	}
	for p := range k.kept {
		if !slices.Contains(standby, p) && !slices.Contains(active, p) {
			k.dropLocked(p, "no longer a standby of this instance")
		}
	}
	for _, p := range standby {
		if k.kept[p] == nil && !slices.Contains(active, p) {
			k.startLocked(p)
		}
	}
	k.r.m.standbyTasks.Set(float64(len(k.kept)))
}

// startLocked starts a standby of task p from the changelog's start.
func (k *standbys) startLocked(p int32) {
	t := k.r.newState(p)
	k.kept[p] = &standby{p: p, t: t}
	k.cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{k.r.cfg.Topics.State: {p: kgo.NewOffset().AtStart()}})
	k.r.log.Info("consume: standby started", "partition", p)
}

// restartLocked has standby p read its partition from the start again.
func (k *standbys) restartLocked(p int32) {
	k.cl.RemoveConsumePartitions(map[string][]int32{k.r.cfg.Topics.State: {p}})
	k.cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{k.r.cfg.Topics.State: {p: kgo.NewOffset().AtStart()}})
}

// dropLocked stops standby p and lets its copy go.
func (k *standbys) dropLocked(p int32, why string) {
	s := k.remove(p)
	if s == nil {
		return
	}
	s.mu.Lock()
	s.gone, s.t = true, nil
	s.mu.Unlock()
	k.r.m.standbyLag.DeleteLabelValues(strconv.Itoa(int(p)))
	k.r.log.Info("consume: standby dropped", "partition", p, "why", why)
}

// remove stops reading standby p and forgets it; k.mu is held.
func (k *standbys) remove(p int32) *standby {
	s := k.kept[p]
	if s == nil {
		return nil
	}
	delete(k.kept, p)
	k.cl.RemoveConsumePartitions(map[string][]int32{k.r.cfg.Topics.State: {p}})
	k.r.m.standbyTasks.Set(float64(len(k.kept)))
	return s
}

// take hands standby p's copy over to the restore: the task and the next
// changelog offset it needs. ok is false when there is none to take.
func (k *standbys) take(p int32) (t *task, next int64, ok bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cl == nil {
		return nil, 0, false
	}
	s := k.remove(p)
	if s == nil {
		return nil, 0, false
	}
	s.mu.Lock() // waits for records being applied
	defer s.mu.Unlock()
	s.gone = true
	k.r.m.standbyLag.DeleteLabelValues(strconv.Itoa(int(p)))
	if s.err != nil {
		return nil, 0, false
	}
	return s.t, s.next, true
}

// open starts a session's standby keeping, reading with cl: run applies
// the records, close drops every standby.
func (k *standbys) open(cl *kgo.Client) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.cl = cl
}

func (k *standbys) close() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for p := range k.kept {
		k.dropLocked(p, "session ended")
	}
	k.cl = nil
}

// run applies the standbys' records until ctx is done.
func (k *standbys) run(ctx context.Context) {
	k.mu.Lock()
	cl := k.cl
	k.mu.Unlock()
	var lags sync.WaitGroup
	lags.Go(func() { k.watchLag(ctx) })
	defer lags.Wait()
	for {
		// A poll's records belong to the standbys kept when it began
		// (removing a partition drops what the client had buffered). A
		// standby started during the poll may get records of one
		// dropped meanwhile, or its own: it applies neither, and reads
		// again from the start.
		k.mu.Lock()
		polled := maps.Clone(k.kept)
		k.mu.Unlock()
		fs := cl.PollFetches(ctx)
		if fs.IsClientClosed() || ctx.Err() != nil {
			return
		}
		fs.EachError(func(topic string, p int32, err error) {
			switch {
			case errors.Is(err, kerr.OffsetOutOfRange):
				// The log start passed the copy's next offset.
				k.mu.Lock()
				if s := k.kept[p]; s != nil && s == polled[p] {
					k.dropLocked(p, "fell behind the log start")
					k.startLocked(p)
				}
				k.mu.Unlock()
			case !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded):
				k.r.log.Warn("consume: standby fetch error", "partition", p, "err", err)
			}
		})
		var wg sync.WaitGroup
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			k.mu.Lock()
			s := k.kept[fp.Partition]
			stale := s != nil && s != polled[fp.Partition]
			if stale && len(fp.Records) > 0 {
				k.restartLocked(fp.Partition) // it has applied nothing yet
			}
			k.mu.Unlock()
			if s != nil && !stale && len(fp.Records) > 0 {
				wg.Go(func() {
					if k.apply(s, fp) != nil {
						k.mu.Lock()
						if k.kept[s.p] == s {
							k.dropLocked(s.p, "a changelog record cannot be applied")
						}
						k.mu.Unlock()
					}
				})
			}
		})
		wg.Wait()
	}
}

// apply applies a fetch's records to standby s, as a restore does, and
// returns the error of a record that cannot be applied.
func (k *standbys) apply(s *standby, fp kgo.FetchTopicPartition) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gone || s.err != nil {
		return nil
	}
	n := 0
	for _, rec := range fp.Records {
		if rec.Offset < s.next {
			continue
		}
		if !rec.Attrs.IsControl() {
			if s.err = s.t.restoreRecord(rec); s.err != nil {
				k.r.log.Warn("consume: standby cannot apply a changelog record", "partition", s.p, "err", s.err)
				return s.err
			}
			n++
		}
		s.next = rec.Offset + 1
	}
	s.lso = max(s.lso, fp.LastStableOffset)
	k.r.m.standbyRecords.Add(float64(n))
	k.r.m.standbyLag.WithLabelValues(strconv.Itoa(int(s.p))).Set(float64(max(0, s.lso-s.next)))
	return nil
}

// watchLag sets each standby's lag from the changelog's last stable
// offsets every second: fetches bring it only with records.
func (k *standbys) watchLag(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		k.mu.Lock()
		held := slices.Collect(maps.Values(k.kept))
		k.mu.Unlock()
		if len(held) == 0 {
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ends, err := k.r.adm.ListCommittedOffsets(lctx, k.r.cfg.Topics.State)
		cancel()
		if err != nil {
			continue
		}
		for _, s := range held {
			e, ok := ends.Lookup(k.r.cfg.Topics.State, s.p)
			if !ok || e.Err != nil {
				continue
			}
			s.mu.Lock()
			if !s.gone {
				s.lso = max(s.lso, e.Offset)
				k.r.m.standbyLag.WithLabelValues(strconv.Itoa(int(s.p))).Set(float64(max(0, s.lso-s.next)))
			}
			s.mu.Unlock()
		}
	}
}
