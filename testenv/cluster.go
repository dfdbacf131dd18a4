package testenv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// ClusterOptions configures StartClickHouseCluster.
type ClusterOptions struct {
	// Name is the cluster's name in remote_servers (default "winback").
	Name string
	// Shards (default 2) and Replicas per shard (default 1).
	Shards, Replicas int
	// ZooKeeper starts a ZooKeeper child too and points every server at
	// it: ON CLUSTER DDL and Replicated tables need it. Replicas > 1
	// implies it.
	ZooKeeper bool
	// Binary is the clickhouse-server to run (default EnsureClickHouse).
	Binary string
	Logger *slog.Logger
}

// ClickHouseCluster is several clickhouse-server child processes that
// know each other as one cluster (remote_servers with each other's native
// ports; macros {shard} = 01, 02, ..., {replica} = r1, r2, ...), in one
// temporary directory.
type ClickHouseCluster struct {
	Name string
	// Nodes are the servers, shard by shard, replica by replica.
	Nodes []*ClickHouse
	// Shards and Replicas as started.
	Shards, Replicas int
	// ZooKeeper is nil unless asked for.
	ZooKeeper *ZooKeeper
	dir       string
}

// StartClickHouseCluster starts the servers (at the same time) and waits
// until each answers. CLICKHOUSE_DSN does not apply: a cluster is always
// started here.
func StartClickHouseCluster(ctx context.Context, o ClusterOptions) (*ClickHouseCluster, error) {
	if o.Name == "" {
		o.Name = "winback"
	}
	o.Shards, o.Replicas = max(o.Shards, 0), max(o.Replicas, 1)
	if o.Shards == 0 {
		o.Shards = 2
	}
	if o.Replicas > 1 {
		o.ZooKeeper = true
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	bin := o.Binary
	if bin == "" {
		var err error
		if bin, err = EnsureClickHouse(ctx, log); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "winback-chcluster-")
	if err != nil {
		return nil, fmt.Errorf("testenv: cluster dir: %w", err)
	}
	c := &ClickHouseCluster{Name: o.Name, Shards: o.Shards, Replicas: o.Replicas, dir: dir}
	if o.ZooKeeper {
		if c.ZooKeeper, err = StartZooKeeper(ctx, filepath.Join(dir, "zookeeper"), log); err != nil {
			c.Close()
			return nil, err
		}
	}
	for range 3 {
		if err = c.start(ctx, o, bin, log); !errors.Is(err, errPortInUse) {
			break
		}
		log.Warn("clickhouse cluster: a port was taken, trying other ports", "err", err)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// start lays out and starts every node on new free ports; on failure it
// kills those that started.
func (c *ClickHouseCluster) start(ctx context.Context, o ClusterOptions, bin string, log *slog.Logger) error {
	n := o.Shards * o.Replicas
	per := 2
	if o.ZooKeeper {
		per = 3 // and an interserver port for replication
	}
	ports, err := freePorts(n * per)
	if err != nil {
		return err
	}
	shardPorts := make([][]int, o.Shards)
	for s := range o.Shards {
		for r := range o.Replicas {
			shardPorts[s] = append(shardPorts[s], ports[(s*o.Replicas+r)*per])
		}
	}
	c.Nodes = make([]*ClickHouse, n)
	for s := range o.Shards {
		for r := range o.Replicas {
			i := s*o.Replicas + r
			l := newLayout(filepath.Join(c.dir, fmt.Sprintf("s%dr%d", s+1, r+1)), ports[i*per], ports[i*per+1])
			l.Cluster, l.ShardPorts = o.Name, shardPorts
			l.Shard, l.Replica = fmt.Sprintf("%02d", s+1), "r"+strconv.Itoa(r+1)
			l.Replicated = o.Replicas > 1
			if o.ZooKeeper {
				l.InterserverPort = ports[i*per+2]
				l.ZooKeeperPort = c.ZooKeeper.Port
			}
			if err := l.write(); err != nil {
				return err
			}
			// removeDir: Close kills the node; the cluster removes its dir.
			node := &ClickHouse{log: log.With("node", filepath.Base(l.Dir)), bin: bin, removeDir: true}
			node.setLayout(l)
			c.Nodes[i] = node
		}
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, node := range c.Nodes {
		wg.Go(func() {
			node.mu.Lock()
			defer node.mu.Unlock()
			errs[i] = node.startLocked(ctx)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err == nil && o.ZooKeeper {
		// A server's first ZooKeeper sessions fail for a few seconds
		// after its start; ON CLUSTER needs one.
		for i, node := range c.Nodes {
			errs[i] = node.waitZooKeeper(ctx)
		}
	}
	if err := errors.Join(errs...); err != nil {
		for _, node := range c.Nodes {
			node.Close()
		}
		c.Nodes = nil
		return err
	}
	return nil
}

// waitZooKeeper waits until the server has a ZooKeeper session (at most
// 30 s).
func (c *ClickHouse) waitZooKeeper(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{c.addr}, MaxOpenConns: 1})
	if err != nil {
		return err
	}
	defer conn.Close()
	for {
		var n uint64
		err := conn.QueryRow(ctx, "SELECT count() FROM system.zookeeper WHERE path = '/'").Scan(&n)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("testenv: clickhouse %s: no ZooKeeper session: %w (last error: %v)", c.addr, ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// DSNs are the nodes' DSNs, in Nodes order.
func (c *ClickHouseCluster) DSNs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.DSN()
	}
	return out
}

// Close kills every server and ZooKeeper and removes the directory.
func (c *ClickHouseCluster) Close() {
	for _, n := range c.Nodes {
		n.Close()
	}
	if c.ZooKeeper != nil {
		c.ZooKeeper.Close()
	}
	_ = os.RemoveAll(c.dir)
}
