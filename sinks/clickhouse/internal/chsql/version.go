package chsql

import (
	"fmt"
	"strconv"
	"strings"
)

// Version is a ClickHouse server version, as SELECT version() prints it
// ("18.16.1", "26.7.1.1").
type Version struct {
	Major, Minor, Patch int
	Raw                 string
}

// ParseVersion parses the output of SELECT version().
func ParseVersion(s string) (Version, error) {
	v := Version{Raw: strings.TrimSpace(s)}
	parts := strings.Split(v.Raw, ".")
	if len(parts) < 2 {
		return v, fmt.Errorf("chsql: server version %q: want MAJOR.MINOR[.PATCH...]", s)
	}
	nums := []*int{&v.Major, &v.Minor, &v.Patch}
	for i := 0; i < len(parts) && i < len(nums); i++ {
		n, err := strconv.Atoi(parts[i])
		if err != nil || n < 0 {
			return v, fmt.Errorf("chsql: server version %q: part %d is not a number", s, i+1)
		}
		*nums[i] = n
	}
	return v, nil
}

// AtLeast reports whether v >= major.minor.
func (v Version) AtLeast(major, minor int) bool {
	return v.Major > major || (v.Major == major && v.Minor >= minor)
}

func (v Version) String() string {
	if v.Raw != "" {
		return v.Raw
	}
	return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
}

// Features says which version-dependent ClickHouse features winback uses on
// a server. See the version matrix in the sinks/clickhouse package doc.
type Features struct {
	// InsertDedupToken: inserts carry insert_deduplication_token, a hash of
	// the batch's content, and the tables keep the hashes of their last
	// DedupWindow blocks (non_replicated_deduplication_window), so a batch
	// written again after a replay is dropped at insert time. 22.2+.
	InsertDedupToken bool
	// AsyncInsert: the server has async_insert (21.11+). Detected and
	// logged only: winback batches itself and waits for each insert.
	AsyncInsert bool
	// LowCardinality: short repeated strings (tiers, reasons, actions,
	// topics) are LowCardinality(String). Experimental in 18.x; used from
	// 20.1.
	LowCardinality bool
	// StringSettings: query settings with string values can be sent. On
	// 18.x clickhouse-go's string settings fail, so only int and bool
	// settings are sent there. 22.2+ is the only place winback needs one
	// (insert_deduplication_token), so it is gated the same way.
	StringSettings bool
	// LightweightDelete: DELETE FROM (23.3+) removes an erased or
	// evicted customer's rows at once; older servers get ALTER TABLE ...
	// DELETE, a mutation that rewrites the parts holding them in the
	// background (sinks/clickhouse erase.go).
	LightweightDelete bool
	// InsertDistributedSync: an insert into a Distributed table can wait
	// until every shard has stored its rows (insert_distributed_sync), in
	// cluster mode; else the rows wait in a queue on the node written to.
	InsertDistributedSync bool
	// InsertQuorum: an insert into a Replicated table waits until N
	// replicas have the block (insert_quorum), in replicated cluster mode.
	// The setting exists in 18.16, but there parts inserted with a quorum
	// stall every later mutation (ClickHouse issue 7133, fixed in 20.3):
	// erasure would never finish (seen here on 18.16), so it is used from
	// 20.3.
	InsertQuorum bool
	// TTL: tables can have a TTL (ALTER TABLE ... MODIFY TTL, 19.6+):
	// with Params.TTL set, ClickHouse deletes old daily rows, triggers
	// and dead letters in merges (migration 091). 18.16 has no TTL.
	TTL bool
}

// FeaturesOf returns the features winback uses on a server of version v.
func FeaturesOf(v Version) Features {
	return Features{
		InsertDedupToken:  v.AtLeast(22, 2),
		AsyncInsert:       v.AtLeast(21, 11),
		LowCardinality:    v.AtLeast(20, 1),
		StringSettings:    v.AtLeast(22, 2),
		LightweightDelete: v.AtLeast(23, 3),
		// insert_distributed_sync came in 1.1.54xxx, before the 18.x
		// numbering.
		InsertDistributedSync: v.AtLeast(18, 1),
		InsertQuorum:          v.AtLeast(20, 3),
		TTL:                   v.AtLeast(19, 6),
	}
}
