package clickhouse

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/winback/winback/sinks/clickhouse/internal/chsql"
)

// Erasure and eviction remove rows; ClickHouse 18.16 has no DELETE
// statement, only mutations: ALTER TABLE ... DELETE WHERE registers a
// mutation that rewrites, in the background, every part that exists when
// it is registered. Parts inserted after that are not touched. Servers
// with lightweight deletes (23.3+, Features.LightweightDelete) get
// DELETE FROM, which hides the rows at once. Either way a row inserted
// before the statement returned is removed, and one inserted after it
// survives, which is the order both callers need:
//
//   - Erase runs between two flushes (it waits for a running one), so
//     every row written for an erased customer before is deleted, and the
//     rows of a customer seen again afterwards are kept;
//   - a flush that holds evicted rows first deletes those customers'
//     earlier rows in customer_aggregates, so the evicted row (version 0)
//     is their only row there, and a later customer under the same id
//     (versions from 1) replaces it.

// An id list of one statement holds at most maxIDs ids and maxBytes bytes
// of them: well below the server's max_query_size (256 KiB by default)
// and max_ast_elements, also with dlq_records' test of the sample for
// each id (the smaller bounds). Fewer statements mean fewer mutations on
// 18.16, each of which rewrites the parts it touches.
const (
	maxIDs, maxBytes             = 5000, 128 << 10
	maxSampleIDs, maxSampleBytes = 500, 16 << 10
)

// Erase deletes every row of the customers ids from every table:
// customer_aggregates, customer_daily, winback_triggers and the
// dlq_records sample, and drops their pending rows. It waits for a
// running flush, and the next flush waits for it. It retries like a flush
// until ctx is done.
func (s *Sink) Erase(ctx context.Context, ids []string) error {
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	if len(ids) == 0 {
		return nil
	}
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	set := make(map[string]bool, len(ids))
	for _, id := range ids {
		set[id] = true
	}
	s.mu.Lock()
	s.pending.Forget(set)
	s.m.pending.Set(float64(s.pending.Len()))
	s.mu.Unlock()
	for _, t := range chsql.Erasable {
		if err := s.deleteRetrying(ctx, t.Table, t.Where, ids); err != nil {
			return err
		}
	}
	return nil
}

// deleteEvicted deletes the earlier rows of the customers whose evicted
// row b holds, from customer_aggregates, before b is inserted.
func (s *Sink) deleteEvicted(ctx context.Context, b *chsql.Batch) error {
	ids := b.Evicted()
	if len(ids) == 0 {
		return nil
	}
	return s.deleteRetrying(ctx, chsql.TableAggregates, chsql.WhereCustomer, ids)
}

// deleteRetrying deletes the rows of table matching where for ids, in
// chunks, retrying with backoff until ctx is done.
func (s *Sink) deleteRetrying(ctx context.Context, table, where string, ids []string) error {
	for len(ids) > 0 {
		n, size := 0, 0
		limit, bytes := maxIDs, maxBytes
		if strings.Contains(where, "%[2]s") {
			limit, bytes = maxSampleIDs, maxSampleBytes
		}
		for n < len(ids) && n < limit && (n == 0 || size+len(ids[n]) < bytes) {
			size += len(ids[n]) + 4
			n++
		}
		q := s.deleteQuery(table, where, ids[:n])
		backoff := minRetryBackoff
		for attempt := 1; ; attempt++ {
			actx, cancel := context.WithTimeout(ctx, s.cfg.AttemptTimeout)
			err := s.execDelete(actx, q)
			cancel()
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return fmt.Errorf("clickhouse: delete %d customers from %s.%s: gave up after %d attempts: %w (last error: %w)", n, s.cfg.Database, table, attempt, ctx.Err(), err)
			}
			pause := backoff/2 + rand.N(backoff/2+1)
			s.log.Warn("clickhouse delete failed, retrying", "table", table, "customers", n, "attempt", attempt, "retry_in", pause, "err", err)
			select {
			case <-ctx.Done():
				return fmt.Errorf("clickhouse: delete %d customers from %s.%s: gave up after %d attempts: %w (last error: %w)", n, s.cfg.Database, table, attempt, ctx.Err(), err)
			case <-time.After(pause):
			}
			backoff = min(backoff*2, s.cfg.MaxRetryBackoff)
		}
		ids = ids[n:]
	}
	return nil
}

// deleteQuery is the statement that deletes table's rows matching where
// for ids on this server.
func (s *Sink) deleteQuery(table, where string, ids []string) string {
	return chsql.DeleteSQL(s.cfg.Database, s.localTable(table), where, ids, s.features.LightweightDelete)
}
