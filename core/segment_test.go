package core

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestSegment(t *testing.T) {
	old := unix.Umask(0o022)
	defer unix.Umask(old)
	s := newStore(t)
	defer s.UnlinkSegment("seg")
	_, err := s.OpenSegment("seg")
	wantErrno(t, err, "shm_open", syscall.ENOENT)
	a, err := s.CreateSegment("/seg", 8192, 0o666, true)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if fi, _ := os.Lstat(filepath.Join(s.Dir(), "seg")); fi.Mode() != 0o644 || fi.Size() != 8192 {
		t.Fatalf("file %v, %d bytes", fi.Mode(), fi.Size())
	}
	_, err = s.CreateSegment("seg", 8192, 0o600, true)
	wantErrno(t, err, "shm_open", syscall.EEXIST)
	if !errors.Is(err, os.ErrExist) {
		t.Fatal("EEXIST is not os.ErrExist")
	}
	b, err := s.OpenSegment("seg")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	a.Bytes()[8191] = 42
	if b.Bytes()[8191] != 42 || b.Size() != 8192 || a.Name() != "/seg" {
		t.Fatal("the two mappings do not share memory")
	}
	// Non-exclusive create opens the existing one; it grows, never shrinks.
	c, err := s.CreateSegment("seg", 100, 0o600, false)
	if err != nil {
		t.Fatal(err)
	}
	if c.Size() != 8192 || c.Bytes()[8191] != 42 {
		t.Fatalf("size %d", c.Size())
	}
	c.Close()
	if err := c.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	d, err := s.CreateSegment("seg", 3*4096, 0o600, false)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if d.Size() != 3*4096 {
		t.Fatalf("size %d, want grown", d.Size())
	}
	// The flags are not left non-blocking.
	if fl, _ := unix.FcntlInt(uintptr(b.fd), unix.F_GETFL, 0); fl&unix.O_NONBLOCK != 0 {
		t.Fatal("O_NONBLOCK left set")
	}
	if err := s.UnlinkSegment("seg"); err != nil {
		t.Fatal(err)
	}
	wantErrno(t, s.UnlinkSegment("seg"), "shm_unlink", syscall.ENOENT)
	if b.Bytes()[8191] != 42 {
		t.Fatal("unlink disturbed a mapping")
	}
}

// A negative size is EINVAL; a zero-sized segment maps nothing.
func TestSegmentSizes(t *testing.T) {
	s := newStore(t)
	_, err := s.CreateSegment("neg", -1, 0o600, true)
	wantErrno(t, err, "shm_open", syscall.EINVAL)
	e, err := s.CreateSegment("empty", 0, 0o600, true)
	if err != nil {
		t.Fatal(err)
	}
	if e.Size() != 0 || len(e.Bytes()) != 0 {
		t.Fatal("empty segment is not empty")
	}
	e.Close()
	s.UnlinkSegment("empty")
}

func TestSegmentBadFiles(t *testing.T) {
	needsRoot(t)
	s := newStore(t)
	at := func(n string) string { return filepath.Join(s.Dir(), n) }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(unix.Mkfifo(at("fifo"), 0o600))
	must(os.Mkdir(at("dir"), 0o700))
	must(os.WriteFile(at("target"), make([]byte, 10), 0o600))
	must(os.Symlink("target", at("link")))
	must(os.Symlink("nowhere", at("dangling")))
	must(os.WriteFile(at("foreign"), make([]byte, 10), 0o644))
	must(os.Chown(at("foreign"), 65534, 65534))
	defer func() {
		for _, n := range []string{"fifo", "dir", "target", "link", "dangling", "foreign"} {
			os.Remove(at(n))
		}
	}()
	for _, c := range []struct {
		name         string
		open, create syscall.Errno
	}{
		{"fifo", syscall.EINVAL, syscall.EINVAL}, // and it does not block
		{"dir", syscall.EINVAL, syscall.EINVAL},
		{"link", syscall.ELOOP, syscall.ELOOP},
		{"dangling", syscall.ELOOP, syscall.ELOOP},
		{"foreign", 0, syscall.EACCES},
	} {
		seg, err := s.OpenSegment(c.name)
		if c.open == 0 {
			if err != nil {
				t.Errorf("OpenSegment(%s): %v", c.name, err)
			} else {
				seg.Close()
			}
		} else {
			wantErrno(t, err, "shm_open", c.open)
		}
		_, err = s.CreateSegment(c.name, 0, 0o600, false)
		wantErrno(t, err, "shm_open", c.create)
	}
	if _, err := os.Lstat(at("nowhere")); !os.IsNotExist(err) {
		t.Fatalf("a symlink was followed: %v", err)
	}
}
