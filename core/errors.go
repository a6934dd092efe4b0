package core

import (
	"errors"
	"os"
	"syscall"
)

// Every failure of a system call is returned as an *os.PathError whose Op is
// the POSIX function it stands for ("sem_open", "shm_unlink", ...), whose
// Path is the object's name as given by the caller, and whose Err is the
// syscall.Errno, so errors.Is(err, syscall.EEXIST) and
// errors.Is(err, os.ErrExist) both work, as with package os.

var (
	// ErrWouldBlock is returned (wrapped) by Semaphore.TryWait when the value
	// is zero. It is syscall.EAGAIN, the errno sem_trywait sets.
	ErrWouldBlock error = syscall.EAGAIN

	// ErrTimeout is returned (wrapped) by Semaphore.TimedWait when the
	// duration elapses. It is syscall.ETIMEDOUT, the errno sem_timedwait
	// sets; it reports Timeout() == true.
	ErrTimeout error = syscall.ETIMEDOUT

	// ErrNotManaged is returned (wrapped) by Store.Sweep on the native
	// /dev/shm: the objects there belong to the system, not to the store.
	ErrNotManaged = errors.New("not a managed store (native " + NativeDir + ")")

	// ErrClosed is returned (wrapped) by methods of a closed Store,
	// Semaphore or Segment. It is os.ErrClosed.
	ErrClosed = os.ErrClosed
)

// pathErr wraps err as the failure of op on name. A nil err stays nil.
func pathErr(op, name string, err error) error {
	if err == nil {
		return nil
	}
	return &os.PathError{Op: op, Path: name, Err: err}
}

// errnoOf returns err as an Errno, or EIO when err is not one (it always is
// for what golang.org/x/sys/unix returns; the fallback only keeps the
// callers' errno mapping total).
func errnoOf(err error) syscall.Errno {
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return syscall.EIO
}
