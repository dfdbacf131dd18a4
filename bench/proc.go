package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100
// on every Linux architecture Go runs on.
const clockTick = 10 * time.Millisecond

// procCPU returns the user plus system CPU time of a live process, from
// /proc/PID/stat (10 ms resolution), or 0 if it cannot be read.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * clockTick
}

// procPeakRSS returns a live process's peak resident set (VmHWM), in bytes.
func procPeakRSS(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// childNamed finds a child process of parent whose command name starts
// with comm (the kernel truncates it to 15 bytes), or returns 0.
func childNamed(parent int, comm string) int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		open, close := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if open < 0 || close < open {
			continue
		}
		name := string(b[open+1 : close])
		f := strings.Fields(string(b[close+1:]))
		if len(f) < 2 {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid == parent && strings.HasPrefix(comm, name) && name != "" {
			return pid
		}
	}
	return 0
}

// usage is what the kernel says a finished child used.
type usage struct {
	CPU     time.Duration // user + system
	PeakRSS int64         // bytes; ru_maxrss, which after Go's vfork+exec includes the parent's peak: prefer the child's own VmHWM
	Wall    time.Duration // from start to exit, as the parent saw it
}

func rusageOf(ps *os.ProcessState) usage {
	u := usage{CPU: ps.UserTime() + ps.SystemTime()}
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		u.PeakRSS = ru.Maxrss << 10 // KiB on Linux
	}
	return u
}

// runContenderChild runs "bench contender" with spec, and returns the
// result it printed (its last stdout line) and its resource usage.
func runContenderChild(ctx context.Context, spec contenderSpec) (contenderResult, usage, error) {
	var res contenderResult
	self, err := os.Executable()
	if err != nil {
		return res, usage{}, err
	}
	arg, err := json.Marshal(spec)
	if err != nil {
		return res, usage{}, err
	}
	cmd := exec.CommandContext(ctx, self, "contender", string(arg))
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	began := time.Now()
	runErr := cmd.Run()
	var u usage
	if cmd.ProcessState != nil {
		u = rusageOf(cmd.ProcessState)
	}
	u.Wall = time.Since(began)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	last := lines[len(lines)-1]
	if jerr := json.Unmarshal([]byte(last), &res); jerr != nil && runErr == nil {
		runErr = fmt.Errorf("contender %s printed %q: %w", spec.Name, last, jerr)
	}
	if runErr != nil {
		var ee *exec.ExitError
		if errors.As(runErr, &ee) && res.Error != "" {
			runErr = errors.New(res.Error)
		}
		return res, u, fmt.Errorf("contender %s: %w", spec.Name, runErr)
	}
	return res, u, nil
}
