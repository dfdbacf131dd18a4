package main

import (
	"errors"
	"log/slog"
	"math"
	"os"
	"runtime/debug"

	"github.com/KimMachineGun/automemlimit/memlimit"

	"github.com/winback/winback/config"
)

// tuneRuntime applies rt to the Go runtime, as Prometheus does with
// runtime.gogc and --auto-gomemlimit: GOGC, and a soft memory limit of
// rt.MemoryLimitRatio × the memory limit that containerLimit reports
// (memlimit.FromCgroup in production). The GOGC and GOMEMLIMIT environment
// variables, when set, win: the runtime has read them already. GOGC -1
// (off) with no memory limit found collects at 100 instead. It logs what
// is in effect at debug level (a failed start-up stays one line; the
// metrics go_gc_gogc_percent and go_gc_gomemlimit_bytes show it too) and
// never fails: a limit it cannot read is a warning.
func tuneRuntime(rt config.Runtime, log *slog.Logger, containerLimit memlimit.Provider) {
	limit := "GOMEMLIMIT environment variable"
	switch {
	case os.Getenv("GOMEMLIMIT") != "":
	case rt.MemoryLimitRatio == 0:
		limit = "none (runtime.memory_limit_ratio 0)"
	default:
		n, err := memlimit.ApplyRatio(containerLimit, rt.MemoryLimitRatio)()
		switch {
		case errors.Is(err, memlimit.ErrNoLimit):
			limit = "none (no container memory limit)"
		case err != nil:
			limit = "none (container memory limit unreadable)"
			log.Warn("runtime: cannot read the container's memory limit; running without a soft memory limit (set GOMEMLIMIT to give one)", "err", err)
		default:
			debug.SetMemoryLimit(int64(min(n, math.MaxInt64)))
			limit = "runtime.memory_limit_ratio of the container's limit"
		}
	}
	gogc := "GOGC environment variable"
	if os.Getenv("GOGC") == "" {
		gogc = "runtime.gogc"
		pct := rt.GOGC
		if pct < 0 && debug.SetMemoryLimit(-1) == math.MaxInt64 {
			pct, gogc = 100, "Go's default: runtime.gogc -1 needs a memory limit"
			log.Warn("runtime: runtime.gogc is -1 (collector off until the memory limit) but there is no memory limit; collecting at GOGC 100 instead (set GOMEMLIMIT, or run in a container with a memory limit)")
		}
		debug.SetGCPercent(pct)
	}
	cur := debug.SetGCPercent(-1)
	debug.SetGCPercent(cur)
	log.Debug("go runtime", "gogc", cur, "gogc_from", gogc, "memory_limit_bytes", debug.SetMemoryLimit(-1), "memory_limit_from", limit)
}
