package testupstream

import "syscall"

// sysProcAttr makes the kernel kill the registry if the test binary dies
// without running its cleanups (e.g. on a test timeout).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
