//go:build !linux && unix

package testenv

import "syscall"

// childAttr puts a child process in its own process group. Outside Linux
// there is no Pdeathsig: a crashed parent leaves the server running.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
