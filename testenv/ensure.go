package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
)

// ErrClickHouseNotInstalled is returned (wrapped, with the command to run)
// when clickhouse-server cannot be found or installed.
var ErrClickHouseNotInstalled = errors.New("clickhouse-server is not installed")

// InstallHint is the command that installs what testenv needs on Debian.
const InstallHint = "sudo apt-get update && sudo apt-get install -y --no-install-recommends clickhouse-server clickhouse-client (or run scripts/deps.sh)"

// aptPackages are installed by EnsureClickHouse.
var aptPackages = []string{"clickhouse-server", "clickhouse-client"}

// serverDirs are searched after PATH: clickhouse-server lives in /usr/sbin,
// which is not on a normal user's PATH.
var serverDirs = []string{"/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"}

// EnsureClickHouse returns the path of clickhouse-server. If it is missing
// and we run as root on a machine with apt-get, it installs Debian's
// clickhouse-server and clickhouse-client (apt-get update first);
// otherwise the error wraps ErrClickHouseNotInstalled and names the command
// to run.
func EnsureClickHouse(ctx context.Context, logger *slog.Logger) (string, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	_, aptErr := exec.LookPath("apt-get")
	return ensureClickHouse(ctx, ensurer{
		log:     logger,
		lookup:  lookupServer,
		root:    os.Geteuid() == 0,
		haveApt: aptErr == nil,
		run:     runLogged(logger),
	})
}

// ensurer holds what ensureClickHouse needs from the machine, so tests can
// drive the install path without a package manager.
type ensurer struct {
	log     *slog.Logger
	lookup  func() (string, error)
	root    bool
	haveApt bool
	run     func(ctx context.Context, name string, args ...string) error
}

func ensureClickHouse(ctx context.Context, e ensurer) (string, error) {
	if p, err := e.lookup(); err == nil {
		return p, nil
	}
	if !e.root {
		return "", fmt.Errorf("testenv: %w; install it with: %s", ErrClickHouseNotInstalled, InstallHint)
	}
	if !e.haveApt {
		return "", fmt.Errorf("testenv: %w and apt-get is missing; install ClickHouse with your package manager", ErrClickHouseNotInstalled)
	}
	e.log.Warn("clickhouse-server not found; installing it with apt-get", "packages", aptPackages)
	if err := e.run(ctx, "apt-get", "update"); err != nil {
		return "", fmt.Errorf("testenv: %w: apt-get update: %w; run: %s", ErrClickHouseNotInstalled, err, InstallHint)
	}
	args := append([]string{"install", "-y", "--no-install-recommends"}, aptPackages...)
	if err := e.run(ctx, "apt-get", args...); err != nil {
		return "", fmt.Errorf("testenv: %w: apt-get install: %w; run: %s", ErrClickHouseNotInstalled, err, InstallHint)
	}
	p, err := e.lookup()
	if err != nil {
		return "", fmt.Errorf("testenv: %w: still missing after apt-get install: %w", ErrClickHouseNotInstalled, err)
	}
	e.log.Info("clickhouse-server installed", "path", p)
	return p, nil
}

func lookupServer() (string, error) {
	if p, err := exec.LookPath("clickhouse-server"); err == nil {
		return p, nil
	}
	for _, d := range serverDirs {
		p := d + "/clickhouse-server"
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New("clickhouse-server not on PATH nor in " + strings.Join(serverDirs, ", "))
}

// runLogged runs a command non-interactively and returns its output's tail
// in the error if it fails. (clickhouse-server's postinst may print
// "policy-rc.d denied execution of start": harmless, we start our own.)
func runLogged(log *slog.Logger) func(ctx context.Context, name string, args ...string) error {
	return func(ctx context.Context, name string, args ...string) error {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		log.Info("running", "cmd", cmd.String())
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w\n%s", cmd, err, tail(out.Bytes(), 20))
		}
		return nil
	}
}

// tail returns the last n lines of b.
func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
