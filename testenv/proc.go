package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"time"
)

// proc is one run of a server (clickhouse-server, ZooKeeper) started as a
// child process.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, set before done is closed
}

// startProc starts name with args in dir, its stdout and stderr going to
// out, which is closed once the process has exited (or at once if it
// cannot start). The child gets SIGKILL if this process dies (childAttr).
func startProc(dir string, out *os.File, name string, args ...string) (*proc, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		out.Close()
		close(p.done)
	}()
	return p, nil
}

// waitReady calls ready every interval until it returns nil, and fails if
// the process exits first or ready has not succeeded within readyTimeout
// (or before ctx ends).
func (p *proc) waitReady(ctx context.Context, every time.Duration, ready func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		if p.exited() {
			return fmt.Errorf("exited: %v", p.err)
		}
		err := ready(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("exited: %v", p.err)
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(every):
		}
	}
}

// kill sends SIGKILL and waits until the process has exited. Killing an
// exited process does nothing.
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}
