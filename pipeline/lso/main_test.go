package lso

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that the reads close their clients: no goroutine is
// left behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
