//go:build !linux

package testupstream

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return nil }
