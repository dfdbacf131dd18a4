package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMakeRunNeedsNoChDB: make run installs only what the demo needs (no
// chDB or KafkaJS, which only the tests use) and passes ARGS to winback dev.
func TestMakeRunNeedsNoChDB(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatalf("make is not installed: %v", err)
	}
	out, err := exec.Command("make", "-C", "../..", "-n", "run", `ARGS=--trigger-format json --data-dir /tmp/wb`).CombinedOutput()
	if err != nil {
		t.Fatalf("make -n run: %v\n%s", err, out)
	}
	plan := string(out)
	if !strings.Contains(plan, "bash scripts/deps.sh --run-only\n") {
		t.Errorf("make run does not call deps.sh --run-only:\n%s", plan)
	}
	if strings.Contains(plan, "bash scripts/deps.sh\n") {
		t.Errorf("make run installs everything (chDB too):\n%s", plan)
	}
	if !strings.Contains(plan, "bin/winback dev --generate --trigger-format json --data-dir /tmp/wb\n") {
		t.Errorf("make run does not pass ARGS:\n%s", plan)
	}

	// deps.sh --run-only leaves the chDB directory alone.
	dir := t.TempDir()
	cmd := exec.Command("bash", "../../scripts/deps.sh", "--run-only")
	cmd.Env = append(os.Environ(), "CHDB_DIR="+dir)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("deps.sh --run-only: %v\n%s", err, b)
	}
	if !strings.Contains(string(b), "KafkaJS and chdb skipped") {
		t.Errorf("deps.sh --run-only said:\n%s", b)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("deps.sh --run-only wrote %d entries into CHDB_DIR", len(entries))
	}
	if b, err := exec.Command("bash", "../../scripts/deps.sh", "--bogus").CombinedOutput(); err == nil || !strings.Contains(string(b), "usage: deps.sh [--run-only]") {
		t.Errorf("deps.sh --bogus: %v\n%s", err, b)
	}
}
