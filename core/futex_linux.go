package core

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Futex operations without FUTEX_PRIVATE_FLAG: the semaphore lives in a
// file mapped by several processes, and glibc, reading private == 128 from
// the semaphore, uses shared futexes too. A private wait would never be
// woken by another process's shared wake.
const (
	futexWaitOp = 0 // FUTEX_WAIT
	futexWakeOp = 1 // FUTEX_WAKE
)

// futexWait sleeps while *addr == val, for at most ts (relative,
// CLOCK_MONOTONIC) when ts is not nil. It returns nil on a wake-up, EAGAIN
// when *addr != val, EINTR on a signal (Go's runtime sends them freely) and
// ETIMEDOUT when ts elapsed. unix.Syscall6, unlike RawSyscall, tells the
// scheduler this thread blocks, so other goroutines keep running.
func futexWait(addr *uint32, val uint32, ts *unix.Timespec) error {
	_, _, e := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWaitOp,
		uintptr(val), uintptr(unsafe.Pointer(ts)), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// futexWake wakes at most n waiters on addr.
func futexWake(addr *uint32, n int) error {
	_, _, e := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWakeOp,
		uintptr(n), 0, 0, 0)
	if e != 0 {
		return syscall.Errno(e)
	}
	return nil
}
