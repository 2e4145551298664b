package scripts_test

import "syscall"

func syscallKill(pid int) error  { return syscall.Kill(pid, syscall.SIGKILL) }
func syscallKill0(pid int) error { return syscall.Kill(pid, 0) }
