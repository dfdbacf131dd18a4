package testenv

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// envHelper makes the test binary act as a parent process that starts
// ClickHouse in the directory it names and then waits to be killed (see
// TestClickHouseDiesWithParent).
const envHelper = "WINBACK_TESTENV_HELPER_CH_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(envHelper); dir != "" {
		os.Exit(helperParent(dir))
	}
	goleak.VerifyTestMain(m)
}

func helperParent(dir string) int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	os.Unsetenv(EnvClickHouseDSN)
	ch, err := StartClickHouse(ctx, ClickHouseOptions{Dir: dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ch.mu.Lock()
	fmt.Printf("%d\n", ch.proc.cmd.Process.Pid)
	ch.mu.Unlock()
	time.Sleep(time.Hour) // until the test kills us
	return 0
}
