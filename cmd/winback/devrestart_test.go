package main

import (
	"bytes"
	"context"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/winback/winback/testenv"
)

// TestDevRestartDataDir: `winback dev --generate --data-dir DIR` started
// again on the same DIR keeps the history as it was: it does not produce
// it a second time (which applied every event again, as late data), and
// the registry keeps its schemas' ids, so the Avro records the broker kept
// still decode (a fresh registry numbered the trigger schema 1, and half
// the history failed as unknown or wrong schemas).
func TestDevRestartDataDir(t *testing.T) {
	ch := testenv.NewClickHouse(t)
	dir := t.TempDir()
	kafkaAddr, regAddr := freeAddr(t), freeAddr(t)
	var out bytes.Buffer
	start := func(generate bool) (stop func()) {
		t.Helper()
		out.Reset()
		httpAddr := freeAddr(t)
		args := []string{"dev", "--customers", "40", "--days", "60", "--encoding", "avro", "--data-dir", dir}
		if generate {
			args = append(args, "--generate")
		}
		cmd := exec.Command(binPath, append(args, "--kafka-addr", kafkaAddr, "--registry-addr", regAddr, "--clickhouse", ch.DSN(),
			"--clickhouse-database", "devrestart", "--partitions", "2", "--http-addr", httpAddr, "--trigger-format", "avro")...)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		waitReady(t, httpAddr, 90*time.Second)
		waitCaughtUp(t, []string{kafkaAddr}, "winback", 2*time.Minute, "orders", "email-events", "support-events")
		return func() {
			t.Helper()
			_ = cmd.Process.Signal(syscall.SIGTERM)
			if err := cmd.Wait(); err != nil {
				t.Fatalf("dev: %v\n%s", err, out.String())
			}
			if t.Failed() {
				t.Logf("dev output:\n%s", out.String())
			}
		}
	}
	subjects := []string{"orders-value", "email-events-value", "support-events-value", "winback-triggers-value"}
	stop := start(true)
	first := records(t, []string{kafkaAddr}, "orders", "email-events", "support-events")
	ids := schemaIDs(t, "http://"+regAddr, subjects)
	stop()
	if first == 0 {
		t.Fatal("the first run generated nothing")
	}

	stop = start(true)
	if got := records(t, []string{kafkaAddr}, "orders", "email-events", "support-events"); got != first {
		t.Errorf("the inputs hold %d records after the restart, %d before: the history was produced again", got, first)
	}
	if !strings.Contains(out.String(), "not generating them again") {
		t.Errorf("the restart does not say why it generates nothing:\n%s", out.String())
	}
	stop()
	// Without --generate, nothing registers the input schemas again: the
	// registry must have kept them, under their ids.
	stop = start(false)
	defer stop()
	if got := schemaIDs(t, "http://"+regAddr, subjects); !slices.Equal(got, ids) {
		t.Errorf("schema ids of %v: %v after the restart, %v before: the kept records name other schemas now", subjects, got, ids)
	}
}

// schemaIDs returns the latest schema id of each subject.
func schemaIDs(t *testing.T, url string, subjects []string) []int {
	t.Helper()
	cl, err := sr.NewClient(sr.URLs(url))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ids []int
	for _, s := range subjects {
		ss, err := cl.SchemaByVersion(ctx, s, -1)
		if err != nil {
			t.Errorf("%s: %v", s, err)
		}
		ids = append(ids, ss.ID)
	}
	return ids
}
