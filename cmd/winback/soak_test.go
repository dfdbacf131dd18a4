//go:build soak

package main

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"
)

// longReference is reference for a stream one instance takes minutes to
// process.
func longReference(t *testing.T, s *stack) outcome {
	t.Helper()
	cfg := runConfig(s.cfg, "ref")
	in := startInstance(t, cfg, "ref-0")
	waitCaughtUp(t, cfg.Kafka.Brokers, cfg.Kafka.Group, 10*time.Minute, drained(cfg)...)
	in.stop(cfg.ShutdownTimeout)
	return collect(t, cfg)
}

// TestLivenessSoak is issue 23's acceptance: two instances and 20 kills,
// and three instances with two killed at once, ten seeds each. It runs
// only under `make soak` (build tag soak, so make test never compiles it);
// WINBACK_SOAK_SEEDS=n runs seeds 0..n-1, WINBACK_SOAK_SEED=s only seed s,
// and WINBACK_LIVENESS_LOG=1 prints each instance's group events.
func TestLivenessSoak(t *testing.T) {
	first, seeds := uint64(0), uint64(10)
	if v, err := strconv.ParseUint(os.Getenv("WINBACK_SOAK_SEEDS"), 10, 64); err == nil && v > 0 {
		seeds = v
	}
	if v, err := strconv.ParseUint(os.Getenv("WINBACK_SOAK_SEED"), 10, 64); err == nil {
		first, seeds = v, 1 // one seed, to look again at a failed one
	}
	// A stream that outlasts the 20 rounds (about 40 s), so that the
	// group is still behind at the last kill and must drain after it.
	s := livenessStack(t, 2400)
	ref := longReference(t, s)
	for seed := first; seed < first+seeds; seed++ {
		t.Run(fmt.Sprintf("two/seed%d", seed), func(t *testing.T) { livenessLoop(t, s, ref, seed, 2, 20, 1) })
		t.Run(fmt.Sprintf("three-two-at-once/seed%d", seed), func(t *testing.T) { livenessLoop(t, s, ref, seed, 3, 20, 2) })
	}
}
