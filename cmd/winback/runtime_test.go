package main

import (
	"bytes"
	"errors"
	"log/slog"
	"math"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/KimMachineGun/automemlimit/memlimit"

	"github.com/winback/winback/config"
)

// TestTuneRuntime: runtime.gogc and runtime.memory_limit_ratio reach the
// Go runtime, and the GOGC and GOMEMLIMIT environment variables win over
// them. Not parallel: the settings are the process's.
func TestTuneRuntime(t *testing.T) {
	gc0, lim0 := debug.SetGCPercent(-1), debug.SetMemoryLimit(-1)
	debug.SetGCPercent(gc0)
	t.Cleanup(func() { debug.SetGCPercent(gc0); debug.SetMemoryLimit(lim0) })

	const gib = 1 << 30
	cgroup := func(n uint64, err error) memlimit.Provider { return func() (uint64, error) { return n, err } }
	for _, tc := range []struct {
		name       string
		rt         config.Runtime
		env        map[string]string
		limit      memlimit.Provider
		wantGC     int
		wantLimit  int64
		wantLogged string
	}{
		{"both from the settings", config.Runtime{GOGC: 300, MemoryLimitRatio: 0.5}, nil, cgroup(4*gib, nil),
			300, 2 * gib, "memory_limit_from=\"runtime.memory_limit_ratio of the container's limit\""},
		{"GOGC env wins", config.Runtime{GOGC: 300, MemoryLimitRatio: 0.5}, map[string]string{"GOGC": "150"}, cgroup(4*gib, nil),
			100, 2 * gib, "gogc_from=\"GOGC environment variable\""},
		{"GOMEMLIMIT env wins", config.Runtime{GOGC: 300, MemoryLimitRatio: 0.5}, map[string]string{"GOMEMLIMIT": "1GiB"}, cgroup(4*gib, nil),
			300, math.MaxInt64, "memory_limit_from=\"GOMEMLIMIT environment variable\""},
		{"no container limit", config.Runtime{GOGC: 200, MemoryLimitRatio: 0.9}, nil, cgroup(0, memlimit.ErrNoLimit),
			200, math.MaxInt64, "no container memory limit"},
		{"unreadable limit: a warning", config.Runtime{GOGC: 200, MemoryLimitRatio: 0.9}, nil, cgroup(0, errors.New("no cgroup fs")),
			200, math.MaxInt64, "level=WARN"},
		{"collector off within the container's limit", config.Runtime{GOGC: -1, MemoryLimitRatio: 0.5}, nil, cgroup(4*gib, nil),
			-1, 2 * gib, "gogc=-1"},
		{"collector off without a limit: 100", config.Runtime{GOGC: -1, MemoryLimitRatio: 0.9}, nil, cgroup(0, memlimit.ErrNoLimit),
			100, math.MaxInt64, "no memory limit; collecting at GOGC 100"},
		{"ratio 0 leaves the limit alone", config.Runtime{GOGC: 200}, nil, cgroup(4*gib, nil),
			200, math.MaxInt64, "runtime.memory_limit_ratio 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// What the runtime had before: Go's defaults (the env
			// variables were read at start, so a test sets them too).
			debug.SetGCPercent(100)
			debug.SetMemoryLimit(math.MaxInt64)
			t.Setenv("GOGC", "")
			t.Setenv("GOMEMLIMIT", "")
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var logs bytes.Buffer
			tuneRuntime(tc.rt, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})), tc.limit)
			if got := debug.SetGCPercent(100); got != tc.wantGC {
				t.Errorf("GOGC %d, want %d", got, tc.wantGC)
			}
			if got := debug.SetMemoryLimit(-1); got != tc.wantLimit {
				t.Errorf("memory limit %d, want %d", got, tc.wantLimit)
			}
			if !strings.Contains(logs.String(), tc.wantLogged) {
				t.Errorf("log %q lacks %q", logs.String(), tc.wantLogged)
			}
		})
	}
}
