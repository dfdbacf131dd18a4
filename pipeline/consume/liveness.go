package consume

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// GroupTimings are the classic-group timings derived from the session
// timeout, so that a rebalance that waits for a dead member always ends
// before the live members waiting in it time out (issue 23; see "Group
// liveness" in docs/ARCHITECTURE.md):
//
//   - the heartbeat interval is a tenth of the session (franz-go's default
//     is a fixed 3 s, half of a 6 s session), so a member's last sign of
//     life is at most session/10 old when it joins a rebalance;
//   - the rebalance timeout, the coordinator's longest wait for the members
//     of a rebalance (its JoinGroup barrier and its SyncGroup barrier), is
//     half the session, where franz-go's default is a fixed 60 s, longer
//     than a 45 s session. A coordinator that keeps counting a member's
//     session while it waits in JoinGroup or SyncGroup (kfake does) then
//     never expels a live member from a rebalance that waits for a dead one.
//
// A JoinGroup's read deadline in franz-go is the rebalance timeout plus
// RequestTimeoutOverhead (10 s), so it outlasts the coordinator's wait.
func GroupTimings(session time.Duration) []kgo.Opt {
	return []kgo.Opt{
		kgo.HeartbeatInterval(max(session/10, 100*time.Millisecond)),
		kgo.RebalanceTimeout(max(session/2, time.Second)),
	}
}

// StaticMember makes the instance a static group member (KIP-345) under
// its instance id, so that a restarted instance replaces its previous
// incarnation in the group at once instead of leaving it behind as a dead
// member until its session times out. A static member does not leave the
// group when its client closes: call LeaveGroup after Run on a graceful
// shutdown.
func StaticMember(instance string) kgo.Opt { return kgo.InstanceID(instance) }

// LeaveGroup takes the static member instance out of group, so that its
// partitions move at once. Run it only after the Runner has stopped.
func LeaveGroup(ctx context.Context, adm *kadm.Client, group, instance string) error {
	resp, err := adm.LeaveGroup(ctx, kadm.LeaveGroup(group).InstanceIDs(instance).Reason("winback shut down"))
	if err == nil {
		err = resp.Error()
	}
	if errors.Is(err, kerr.UnknownMemberID) || errors.Is(err, kerr.GroupIDNotFound) {
		return nil // not a member (it stopped before joining): nothing to leave
	}
	if err != nil {
		return fmt.Errorf("consume: leave group %s as %s: %w", group, instance, err)
	}
	return nil
}
