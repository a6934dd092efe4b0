package core

import (
	"strings"
	"syscall"
	"testing"
)

func TestCheckName(t *testing.T) {
	for _, c := range []struct {
		name string
		max  int
		want string
		err  error
	}{
		{"a", SemNameMax, "a", nil},
		{"/a", SemNameMax, "a", nil},
		{"///a.b-c", ShmNameMax, "a.b-c", nil},
		{"", SemNameMax, "", syscall.EINVAL},
		{"/", SemNameMax, "", syscall.EINVAL},
		{"///", ShmNameMax, "", syscall.EINVAL},
		{"a/b", SemNameMax, "", syscall.EINVAL},
		{"/a/", ShmNameMax, "", syscall.EINVAL},
		{"a\x00b", ShmNameMax, "", syscall.EINVAL},
		{strings.Repeat("x", SemNameMax), SemNameMax, strings.Repeat("x", SemNameMax), nil},
		{"/" + strings.Repeat("x", SemNameMax), SemNameMax, strings.Repeat("x", SemNameMax), nil},
		{strings.Repeat("x", SemNameMax+1), SemNameMax, "", syscall.ENAMETOOLONG},
		{strings.Repeat("x", ShmNameMax), ShmNameMax, strings.Repeat("x", ShmNameMax), nil},
		{strings.Repeat("x", ShmNameMax+1), ShmNameMax, "", syscall.ENAMETOOLONG},
		// An inner slash is EINVAL even in a name that is also too long.
		{strings.Repeat("x", 300) + "/", ShmNameMax, "", syscall.EINVAL},
	} {
		got, err := checkName(c.name, c.max)
		if got != c.want || err != c.err {
			t.Errorf("checkName(%q, %d) = %q, %v; want %q, %v", c.name, c.max, got, err, c.want, c.err)
		}
	}
}

// Every operation reports name errors with its own op and the errno of
// glibc; the unlinks turn them all into ENOENT.
func TestNameErrors(t *testing.T) {
	s := newStore(t)
	long := func(n int) string { return strings.Repeat("n", n) }
	for _, c := range []struct {
		name    string
		open    syscall.Errno
		semOpen syscall.Errno
	}{
		{"", syscall.EINVAL, syscall.EINVAL},
		{"/", syscall.EINVAL, syscall.EINVAL},
		{"a/b", syscall.EINVAL, syscall.EINVAL},
		{long(SemNameMax + 1), 0, syscall.ENAMETOOLONG},
		{long(ShmNameMax + 1), syscall.ENAMETOOLONG, syscall.ENAMETOOLONG},
	} {
		_, err := s.CreateSemaphore(c.name, 0o600, 0, false)
		wantErrno(t, err, "sem_open", c.semOpen)
		_, err = s.OpenSemaphore(c.name)
		wantErrno(t, err, "sem_open", c.semOpen)
		wantErrno(t, s.UnlinkSemaphore(c.name), "sem_unlink", syscall.ENOENT)
		wantErrno(t, s.UnlinkSegment(c.name), "shm_unlink", syscall.ENOENT)
		if c.open == 0 {
			continue // a valid segment name
		}
		_, err = s.CreateSegment(c.name, 0, 0o600, false)
		wantErrno(t, err, "shm_open", c.open)
		_, err = s.OpenSegment(c.name)
		wantErrno(t, err, "shm_open", c.open)
	}
	// The longest names work, with and without leading slashes.
	sem, err := s.CreateSemaphore("//"+long(SemNameMax), 0o600, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	sem.Close()
	if err := s.UnlinkSemaphore(long(SemNameMax)); err != nil {
		t.Fatal(err)
	}
	seg, err := s.CreateSegment("/"+long(ShmNameMax), 1, 0o600, true)
	if err != nil {
		t.Fatal(err)
	}
	seg.Close()
	if err := s.UnlinkSegment(long(ShmNameMax)); err != nil {
		t.Fatal(err)
	}
}
