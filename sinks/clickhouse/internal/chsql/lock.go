package chsql

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// The migration lock: when several instances start at once, one runs the
// migrations and the others wait, then find nothing left to do. ClickHouse
// 18.16 has no transactions and no compare-and-set, and without ZooKeeper
// no coordination service either, so the lock is a lease built from
// inserts and reads of one table, schema_lock (Distributed in cluster
// mode, so every instance reads the same rows whichever node it talks to):
//
//  1. claim: insert a row (token, owner, claimed_at = now(), expires_at =
//     now() + TTL), token random;
//  2. wait Settle, so that a claim that began before ours is visible
//     before we read (inserts are synchronous: insert_distributed_sync in
//     cluster mode);
//  3. read the live claims (not released, not expired), oldest first
//     (claimed_at, then token): if ours has been first in every read for
//     Settle, we hold the lock; else wait Poll and read again. Every
//     instance orders the same rows the same way, so only one sees itself
//     first. The second Settle is for replicated clusters: a read goes to
//     one replica of each shard, which may not have fetched a claim that
//     began before ours yet (seen in a test on a loaded machine: over a
//     second), and each read may go to another replica.
//
// Holder and waiters renew their claims every TTL/3 (a row with a later
// expires_at); the holder inserts a released row when done. A holder that
// dies stops renewing, and its claim expires after TTL; a waiter whose own
// claim expired (it stalled for a TTL) claims anew, at the back.
//
// What it does not cover: an instance that stalls for longer than TTL
// while holding the lock may find another running migrations when it
// wakes (as with any lease), and Settle must exceed the skew of the
// nodes' clocks in cluster mode (claimed_at is the clock of the node an
// instance is connected to), the time a claim's insert takes and, in a
// replicated cluster, the replicas' lag (over a second has been seen on a
// loaded machine). Migrations are idempotent, so a double run
// costs time, not data, except an ALTER ... ADD COLUMN, which fails
// (column exists) and is retried by winback's start-up loop.

// LockOptions tune the migration lock; zero fields take the defaults.
type LockOptions struct {
	// Owner is recorded with the claim for people reading schema_lock
	// (default host:pid).
	Owner string
	// TTL is how long a claim lives without renewal (default 30 s, at
	// least 3 s: the table's clock has seconds).
	TTL time.Duration
	// Settle is the wait between claiming and the first read, and how
	// long the claim must then stay first in every read (default 1 s).
	Settle time.Duration
	// Poll is how often a waiter reads again (default 500 ms).
	Poll time.Duration
}

const lockName = "migrate"

func (o LockOptions) withDefaults() LockOptions {
	if o.Owner == "" {
		host, _ := os.Hostname()
		o.Owner = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	if o.TTL <= 0 {
		o.TTL = 30 * time.Second
	}
	o.TTL = max(o.TTL, 3*time.Second)
	if o.Settle <= 0 {
		o.Settle = time.Second
	}
	if o.Poll <= 0 {
		o.Poll = 500 * time.Millisecond
	}
	return o
}

// LockTableSQL creates the lock table (on one node; rendered for the
// cluster by acquireLock).
func LockTableSQL(db string) string {
	return fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s.schema_lock
(
    name        String,
    token       String,
    owner       String,
    claimed_at  DateTime('UTC'),
    expires_at  DateTime('UTC'),
    released    UInt8
)
ENGINE = MergeTree
ORDER BY (name, token)`, db)
}

// migrationLock is a held lock; release ends it.
type migrationLock struct {
	ex    Executor
	p     Params
	o     LockOptions
	token string
	log   *slog.Logger
	stop  chan struct{}
	done  sync.WaitGroup
}

func newToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// acquireLock creates schema_lock if needed and waits until this
// instance's claim is the oldest live one.
func acquireLock(ctx context.Context, ex Executor, p Params, log *slog.Logger) (*migrationLock, error) {
	o := p.Lock.withDefaults()
	ddl := []clusterStmt{{LockTableSQL(p.Database), true}}
	if p.Cluster.Name != "" {
		var err error
		if ddl, err = newClusterRenderer(p.Cluster, p.Database).render(ddl[0].sql); err != nil {
			return nil, err
		}
	}
	for _, st := range ddl {
		if err := execScoped(ctx, ex, p, st.sql, st.everywhere); err != nil {
			return nil, fmt.Errorf("clickhouse migration lock: create %s.schema_lock: %w", p.Database, err)
		}
	}
	l := &migrationLock{ex: ex, p: p, o: o, log: log, stop: make(chan struct{})}
	claim := func() error {
		l.token = newToken()
		if err := l.write(ctx, false); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(o.Settle):
		}
		return nil
	}
	if err := claim(); err != nil {
		return nil, err
	}
	lastRenew := time.Now()
	waitingFor := ""
	var firstSince time.Time // since when ours has been first in every read
	for {
		rows, err := ex.Query(ctx, fmt.Sprintf(`SELECT token, owner FROM
(
    SELECT token, any(owner) AS owner, min(claimed_at) AS c, max(expires_at) AS e, max(released) AS r
    FROM %s.schema_lock WHERE name = %s GROUP BY token
)
WHERE r = 0 AND e > now()
ORDER BY c, token`, p.Database, Quote(lockName)))
		if err != nil {
			return nil, fmt.Errorf("clickhouse migration lock: read: %w", err)
		}
		mine := false
		for _, r := range rows {
			if len(r) == 2 && r[0] == l.token {
				mine = true
			}
		}
		if len(rows) == 0 || rows[0][0] != l.token {
			firstSince = time.Time{}
		} else if firstSince.IsZero() {
			firstSince = time.Now()
		}
		switch {
		case !firstSince.IsZero() && time.Since(firstSince) >= o.Settle:
			if waitingFor != "" {
				log.Info("clickhouse migration lock taken", "owner", o.Owner, "waited_for", waitingFor)
			}
			l.done.Add(1)
			go l.renew()
			return l, nil
		case !firstSince.IsZero():
			// First so far: read again until it has held for Settle.
		case !mine:
			// Our claim expired while we waited (we stalled): claim anew.
			log.Warn("clickhouse migration lock: claim expired, claiming again", "owner", o.Owner)
			if err := claim(); err != nil {
				return nil, err
			}
			lastRenew = time.Now()
			continue
		}
		if holder := rows[0][1]; firstSince.IsZero() && holder != waitingFor {
			waitingFor = holder
			log.Info("clickhouse migrations: waiting for another instance", "holder", holder, "owner", o.Owner)
		}
		if time.Since(lastRenew) >= o.TTL/3 {
			if err := l.write(ctx, false); err != nil {
				return nil, err
			}
			lastRenew = time.Now()
		}
		select {
		case <-ctx.Done():
			l.releaseClaim()
			return nil, fmt.Errorf("clickhouse migration lock: waiting for %s: %w", waitingFor, ctx.Err())
		case <-time.After(o.Poll):
		}
	}
}

// write inserts a row of this claim: a renewal, or the release.
func (l *migrationLock) write(ctx context.Context, released bool) error {
	rel := 0
	if released {
		rel = 1
	}
	q := fmt.Sprintf("INSERT INTO %s.schema_lock (name, token, owner, claimed_at, expires_at, released) SELECT %s, %s, %s, now(), now() + %d, %d",
		l.p.Database, Quote(lockName), Quote(l.token), Quote(l.o.Owner), int(l.o.TTL/time.Second), rel)
	// A few quick retries: on replicated shards the claims of instances
	// starting together are quorum inserts into one table, which 18.16
	// takes one at a time ("quorum for previous write has not been
	// satisfied yet").
	var err error
	for attempt := 1; attempt <= 5; attempt++ {
		if err = l.ex.Exec(ctx, q); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("clickhouse migration lock: write: %w (last error: %w)", ctx.Err(), err)
		case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
		}
	}
	return fmt.Errorf("clickhouse migration lock: write: %w", err)
}

// renew keeps the held claim alive until release.
func (l *migrationLock) renew() {
	defer l.done.Done()
	t := time.NewTicker(l.o.TTL / 3)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), l.o.TTL/3)
			if err := l.write(ctx, false); err != nil {
				l.log.Warn("clickhouse migration lock: renewal failed", "err", err)
			}
			cancel()
		}
	}
}

// release stops renewing and marks the claim released, so that the next
// waiter goes on at once (else it would wait for the claim to expire).
func (l *migrationLock) release() {
	close(l.stop)
	l.done.Wait()
	l.releaseClaim()
}

func (l *migrationLock) releaseClaim() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.write(ctx, true); err != nil {
		l.log.Warn("clickhouse migration lock: release failed; the claim expires by itself", "err", err, "ttl", l.o.TTL)
	}
}
