package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"strconv"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/winback/winback/sinks/clickhouse/internal/chsql"
)

// clusterConn is what cluster mode (Config.Cluster) needs beyond the
// connection of the sink: how DDL reaches every node, and the settings of
// inserts into the Distributed tables.
type clusterConn struct {
	name string
	// onCluster: the servers have ZooKeeper, DDL runs once with ON
	// CLUSTER; else it runs on each node through nodes.
	onCluster bool
	nodes     []clusterNode
	// settings go with every insert and every statement: int settings
	// only, which 18.16 takes.
	settings clickhouse.Settings
	shards   int
	replicas int // the fewest replicas of a shard
	// replicated: the shards have internal replication (Replicated
	// tables).
	replicated bool
}

type clusterNode struct {
	addr string
	conn driver.Conn
}

// ErrCluster marks a cluster configuration the servers do not match.
var ErrCluster = errors.New("clickhouse cluster")

// openCluster reads the cluster from system.clusters on the node the sink
// is connected to, finds out whether ON CLUSTER works (ZooKeeper) and
// opens a connection to every node for the DDL when it does not.
func openCluster(ctx context.Context, conn driver.Conn, opts *clickhouse.Options, cfg Config, f Features) (*clusterConn, error) {
	rows, err := queryStrings(ctx, conn, "SELECT toString(shard_num), toString(replica_num), host_address, toString(port) FROM system.clusters WHERE cluster = "+chsql.Quote(cfg.Cluster)+" ORDER BY shard_num, replica_num")
	if err != nil {
		return nil, fmt.Errorf("clickhouse: cluster %s: read system.clusters: %w", cfg.Cluster, err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%w: %s is not in the server's remote_servers (system.clusters)", ErrCluster, cfg.Cluster)
	}
	c := &clusterConn{name: cfg.Cluster, settings: clickhouse.Settings{}, replicated: cfg.Replicated}
	perShard := map[string]int{}
	for _, r := range rows {
		perShard[r[0]]++
	}
	c.shards = len(perShard)
	c.replicas = len(rows)
	for _, n := range perShard {
		c.replicas = min(c.replicas, n)
	}
	// system.zookeeper exists only where ZooKeeper is configured (a
	// query on it fails while the session is not up yet; its existence
	// is the configuration).
	zk, err := queryStrings(ctx, conn, "SELECT name FROM system.tables WHERE database = 'system' AND name = 'zookeeper'")
	if err != nil {
		return nil, fmt.Errorf("clickhouse: cluster %s: read system.tables: %w", cfg.Cluster, err)
	}
	c.onCluster = len(zk) == 1
	if cfg.Replicated && !c.onCluster {
		return nil, fmt.Errorf("%w: replicated tables need ZooKeeper, and the server has none configured", ErrCluster)
	}
	// Connections to every node: for the DDL without ZooKeeper, and with
	// it for the ALTERs of Distributed tables on replicated shards
	// (chsql.AltersDistributed).
	if !c.onCluster || cfg.Replicated {
		for _, r := range rows {
			o := *opts
			o.Addr = []string{net.JoinHostPort(r[2], r[3])}
			o.MaxOpenConns = 2
			nc, err := clickhouse.Open(&o)
			if err != nil {
				c.close()
				return nil, fmt.Errorf("clickhouse: cluster %s: open %s: %w", cfg.Cluster, o.Addr[0], err)
			}
			c.nodes = append(c.nodes, clusterNode{addr: o.Addr[0], conn: nc})
		}
	}
	if f.InsertDistributedSync {
		// The insert returns once every shard stored its rows: what the
		// flush confirms is in ClickHouse, not queued on one node.
		c.settings["insert_distributed_sync"] = 1
	}
	if cfg.Replicated && f.InsertQuorum && c.replicas > 1 {
		// Every replica of the shard has the block before the insert
		// returns: a replica that fails next cannot take confirmed rows
		// with it. (From 20.3: Features.InsertQuorum.)
		c.settings["insert_quorum"] = c.replicas
	}
	return c, nil
}

func (c *clusterConn) close() {
	for _, n := range c.nodes {
		n.conn.Close()
	}
}

// ctx adds the cluster's settings to ctx, with extra ones.
func (c *clusterConn) ctx(ctx context.Context, extra map[string]any) context.Context {
	s := clickhouse.Settings{}
	maps.Copy(s, c.settings)
	maps.Copy(s, extra)
	if len(s) == 0 {
		return ctx
	}
	return clickhouse.Context(ctx, clickhouse.WithSettings(s))
}

// execEverywhere runs a DDL statement on every node: with ON CLUSTER, or
// on each node in turn.
func (c *clusterConn) execEverywhere(ctx context.Context, conn driver.Conn, query string) error {
	if c.onCluster && !(c.replicated && chsql.AltersDistributed(query)) {
		q, err := chsql.OnCluster(query, c.name)
		if err != nil {
			return err
		}
		return conn.Exec(c.ctx(ctx, nil), q)
	}
	for _, n := range c.nodes {
		if err := n.conn.Exec(ctx, query); err != nil {
			return fmt.Errorf("node %s: %w", n.addr, err)
		}
	}
	return nil
}

func (c *clusterConn) String() string {
	mode := "each node"
	if c.onCluster {
		mode = "ON CLUSTER"
	}
	return c.name + " (" + strconv.Itoa(c.shards) + " shards × " + strconv.Itoa(c.replicas) + " replicas, DDL " + mode + ")"
}

// clusterExecutor is the migrations' executor in cluster mode.
type clusterExecutor struct {
	executor
	c *clusterConn
}

func (e clusterExecutor) Exec(ctx context.Context, query string) error {
	return e.conn.Exec(e.c.ctx(ctx, nil), query)
}

func (e clusterExecutor) ExecEverywhere(ctx context.Context, query string) error {
	return e.c.execEverywhere(ctx, e.conn, query)
}

// localTable is the table a mutation goes to: in cluster mode the local
// table under the Distributed one.
func (s *Sink) localTable(table string) string {
	if s.cluster == nil {
		return table
	}
	return table + chsql.LocalSuffix
}

// execDelete runs a delete statement: in cluster mode on every node's
// local table.
func (s *Sink) execDelete(ctx context.Context, q string) error {
	if s.cluster == nil {
		return s.conn.Exec(ctx, q)
	}
	return s.cluster.execEverywhere(ctx, s.conn, q)
}

// hostsOf lists a cluster's nodes for logs.
func (c *clusterConn) hosts() string {
	var hs []string
	for _, n := range c.nodes {
		hs = append(hs, n.addr)
	}
	return strings.Join(hs, ",")
}
