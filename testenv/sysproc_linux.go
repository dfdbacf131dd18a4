package testenv

import "syscall"

// childAttr makes a child process die with us (Pdeathsig) and puts it in its
// own process group, so a terminal's Ctrl-C reaches only winback, which then
// stops the child in order (after flushing to it).
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}
