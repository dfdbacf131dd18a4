package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ErrZooKeeperNotInstalled is returned (wrapped, with the command to run)
// when ZooKeeper cannot be found or installed.
var ErrZooKeeperNotInstalled = errors.New("zookeeper is not installed")

// ZooKeeperHint is the command that installs Debian's ZooKeeper (3.8; a
// Java program: the jar and a JRE).
const ZooKeeperHint = "sudo apt-get update && sudo apt-get install -y --no-install-recommends zookeeper (or run scripts/deps.sh)"

// zooKeeperJar is where Debian's zookeeper package puts its jar, with its
// dependencies on the manifest's class path.
var zooKeeperJar = "/usr/share/java/zookeeper.jar"

func lookupZooKeeper() (string, error) {
	if _, err := exec.LookPath("java"); err != nil {
		return "", errors.New("java not on PATH")
	}
	if _, err := os.Stat(zooKeeperJar); err != nil {
		return "", fmt.Errorf("%s: %w", zooKeeperJar, err)
	}
	return zooKeeperJar, nil
}

// EnsureZooKeeper returns the path of ZooKeeper's jar, installing Debian's
// zookeeper package the way EnsureClickHouse installs clickhouse-server.
func EnsureZooKeeper(ctx context.Context, logger *slog.Logger) (string, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if p, err := lookupZooKeeper(); err == nil {
		return p, nil
	}
	_, aptErr := exec.LookPath("apt-get")
	if os.Geteuid() != 0 || aptErr != nil {
		return "", fmt.Errorf("testenv: %w; install it with: %s", ErrZooKeeperNotInstalled, ZooKeeperHint)
	}
	run := runLogged(logger)
	logger.Warn("zookeeper not found; installing it with apt-get")
	if err := run(ctx, "apt-get", "update"); err != nil {
		return "", fmt.Errorf("testenv: %w: apt-get update: %w", ErrZooKeeperNotInstalled, err)
	}
	if err := run(ctx, "apt-get", "install", "-y", "--no-install-recommends", "zookeeper"); err != nil {
		return "", fmt.Errorf("testenv: %w: apt-get install: %w", ErrZooKeeperNotInstalled, err)
	}
	return lookupZooKeeper()
}

// ZooKeeper is a standalone ZooKeeper server run as a child process on a
// free loopback port, for ClickHouse's ON CLUSTER DDL and Replicated
// tables.
type ZooKeeper struct {
	Port int
	proc *proc
}

// StartZooKeeper starts ZooKeeper with its data under dir and waits until
// it serves (at most 30 s).
func StartZooKeeper(ctx context.Context, dir string, logger *slog.Logger) (*ZooKeeper, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	jar, err := EnsureZooKeeper(ctx, logger)
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(1)
	if err != nil {
		return nil, err
	}
	port := ports[0]
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, fmt.Errorf("testenv: zookeeper dir: %w", err)
	}
	cfg := filepath.Join(dir, "zoo.cfg")
	// A short tick: sessions of closed ClickHouse servers expire fast.
	conf := fmt.Sprintf("tickTime=500\ndataDir=%s\nclientPort=%d\nadmin.enableServer=false\n4lw.commands.whitelist=ruok,srvr\n", data, port)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		return nil, fmt.Errorf("testenv: zookeeper config: %w", err)
	}
	logPath := filepath.Join(dir, "zookeeper.log")
	out, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("testenv: zookeeper log: %w", err)
	}
	p, err := startProc(dir, out, "java", "-Xmx256m", "-cp", jar, "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg)
	if err != nil {
		return nil, fmt.Errorf("testenv: start zookeeper: %w", err)
	}
	if err := p.waitReady(ctx, 100*time.Millisecond, func(context.Context) error { return serving(port) }); err != nil {
		p.kill()
		return nil, fmt.Errorf("testenv: zookeeper on port %d did not start: %w\n%s", port, err, readFrom(logPath, 0))
	}
	logger.Info("zookeeper started", "port", port, "pid", p.cmd.Process.Pid)
	return &ZooKeeper{Port: port, proc: p}, nil
}

// serving asks ZooKeeper's four-letter "srvr": it answers with its
// version once it serves sessions ("ruok" answers "imok" before: the
// ClickHouse servers' first sessions then fail, and a ClickHouse 18.16
// whose DDL worker has no session crashes on ON CLUSTER).
func serving(port int) error {
	if answer := fourLetter(port, "srvr"); !strings.Contains(answer, "Zookeeper version") {
		return fmt.Errorf("srvr answered %q", answer)
	}
	return nil
}

func fourLetter(port int, cmd string) string {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	if err != nil {
		return ""
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte(cmd)); err != nil {
		return ""
	}
	b, _ := io.ReadAll(c)
	return string(b)
}

// Close kills ZooKeeper and waits for it to exit.
func (z *ZooKeeper) Close() { z.proc.kill() }
