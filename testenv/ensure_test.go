package testenv

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
)

func TestEnsureClickHouseHere(t *testing.T) {
	p, err := EnsureClickHouse(testCtx(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(p); err != nil || st.Mode()&0o111 == 0 {
		t.Fatalf("EnsureClickHouse = %q, not an executable: %v", p, err)
	}
}

// TestEnsureClickHouse drives the install logic with a recorded command
// runner instead of apt-get.
func TestEnsureClickHouse(t *testing.T) {
	type result struct {
		path string
		err  error
		ran  []string
	}
	ensure := func(installed, root, haveApt bool, failOn string) result {
		var r result
		e := ensurer{
			log:     TestLogger(t),
			root:    root,
			haveApt: haveApt,
			lookup: func() (string, error) {
				if installed {
					return "/usr/sbin/clickhouse-server", nil
				}
				return "", errors.New("not found")
			},
			run: func(_ context.Context, name string, args ...string) error {
				cmd := strings.Join(append([]string{name}, args...), " ")
				r.ran = append(r.ran, cmd)
				if failOn != "" && strings.Contains(cmd, failOn) {
					return errors.New("exit status 100")
				}
				if strings.Contains(cmd, " install ") {
					installed = true
				}
				return nil
			},
		}
		r.path, r.err = ensureClickHouse(context.Background(), e)
		return r
	}
	const install = "apt-get install -y --no-install-recommends clickhouse-server clickhouse-client"

	// Present: nothing runs.
	if r := ensure(true, false, false, ""); r.err != nil || r.path != "/usr/sbin/clickhouse-server" || len(r.ran) != 0 {
		t.Fatalf("installed: %+v", r)
	}
	// Missing, not root: the error names the command.
	r := ensure(false, false, true, "")
	if !errors.Is(r.err, ErrClickHouseNotInstalled) || !strings.Contains(r.err.Error(), install) || len(r.ran) != 0 {
		t.Fatalf("not root: %+v", r)
	}
	// Missing, root, no apt-get.
	if r := ensure(false, true, false, ""); !errors.Is(r.err, ErrClickHouseNotInstalled) || len(r.ran) != 0 {
		t.Fatalf("root without apt: %+v", r)
	}
	// Missing, root: update, then install.
	r = ensure(false, true, true, "")
	if r.err != nil || r.path == "" || strings.Join(r.ran, "; ") != "apt-get update; "+install {
		t.Fatalf("root install: %+v", r)
	}
	// apt-get install fails: the error says so and what to run.
	r = ensure(false, true, true, "install")
	if !errors.Is(r.err, ErrClickHouseNotInstalled) || !strings.Contains(r.err.Error(), "exit status 100") || !strings.Contains(r.err.Error(), install) {
		t.Fatalf("failed install: %+v", r)
	}
}
