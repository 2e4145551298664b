package zktest

import "syscall"

// sysProcAttr puts a server in its own process group (so a signal reaches the
// whole group) and has the kernel kill it if the test process dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
