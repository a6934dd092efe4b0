package core

import (
	"strings"
	"syscall"
)

// Names are checked exactly as glibc ≥ 2.38 __shm_get_name does, and as the
// C shim does, so that a name valid in Python is valid here and one refused
// there is refused here with the same errno.

// checkName strips the leading slashes of name and returns the file name
// component. max is SemNameMax or ShmNameMax.
func checkName(name string, max int) (string, error) {
	n := strings.TrimLeft(name, "/")
	// A NUL cannot reach the kernel in a C string; the C side would see a
	// shorter name, which Go cannot pass on faithfully, so refuse it.
	if n == "" || strings.ContainsAny(n, "/\x00") {
		return "", syscall.EINVAL
	}
	if len(n) > max {
		return "", syscall.ENAMETOOLONG
	}
	return n, nil
}

// semFile returns the file name of semaphore name.
func semFile(name string) (string, error) {
	n, err := checkName(name, SemNameMax)
	if err != nil {
		return "", err
	}
	return SemPrefix + n, nil
}

// segFile returns the file name of segment name.
func segFile(name string) (string, error) {
	return checkName(name, ShmNameMax)
}

// unlinkNameErr maps a name error of sem_unlink/shm_unlink to ENOENT: glibc
// reports that no object by that name exists, whatever is wrong with it.
func unlinkNameErr(error) error { return syscall.ENOENT }
