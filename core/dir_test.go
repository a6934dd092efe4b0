package core

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestResolveDir(t *testing.T) {
	notNative := t.TempDir() // not a tmpfs here, or if it is, the env cases still hold
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(notNative, &fs); err != nil || uint64(fs.Type) == TmpfsMagic {
		t.Fatalf("%s is a tmpfs (or unreadable: %v): run with TMPDIR on a disk file system, as Lambda's /tmp", notNative, err)
	}
	for _, c := range []struct {
		env    func(string) string
		native string
		dir    string
		isNat  bool
		err    error
	}{
		{env(EnvDir, "/x/store"), notNative, "/x/store", false, nil},
		{env(EnvDir, NativeDir), NativeDir, NativeDir, false, nil}, // forced: a store even there
		{env(EnvDir, "rel/dir"), notNative, "", false, syscall.EINVAL},
		{env(), notNative, "/tmp/shm", false, nil},
		{env("TMPDIR", "/var/tmp"), notNative, "/var/tmp/shm", false, nil},
		{env("TMPDIR", "relative"), notNative, "/tmp/shm", false, nil},
		{env(), filepath.Join(notNative, "missing"), "/tmp/shm", false, nil},
		// Spelled as the preload spells it: trailing slashes go, nothing else is cleaned.
		{env(EnvDir, "/x/store//"), notNative, "/x/store", false, nil},
		{env(EnvDir, "/"), notNative, "/", false, nil},
		{env("TMPDIR", "/var/tmp/"), notNative, "/var/tmp//shm", false, nil},
		{env("TMPDIR", "/a/../b"), notNative, "/a/../b/shm", false, nil},
		{env(EnvDir, "/"+strings.Repeat("x", unix.PathMax)), notNative, "", false, syscall.ENAMETOOLONG},
	} {
		dir, native, err := resolveDir(c.env, c.native)
		if dir != c.dir || native != c.isNat || !errors.Is(err, c.err) || (err == nil) != (c.err == nil) {
			t.Errorf("resolveDir(native=%s) = %q, %v, %v; want %q, %v, %v", c.native, dir, native, err, c.dir, c.isNat, c.err)
		}
	}
	// /dev/shm is native exactly when it is a tmpfs we may write.
	if nativeStatus(NativeDir) == nil {
		dir, native, err := resolveDir(env(), NativeDir)
		if dir != NativeDir || !native || err != nil {
			t.Errorf("resolveDir() = %q, %v, %v; want native %s", dir, native, err, NativeDir)
		}
	}
}

func TestOpenDefault(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	t.Setenv(EnvDir, dir)
	s, err := OpenDefault()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Dir() != dir || !s.Managed() {
		t.Fatalf("OpenDefault() = %s managed=%v, want %s managed", s.Dir(), s.Managed(), dir)
	}
	if nativeStatus(NativeDir) != nil {
		return
	}
	t.Setenv(EnvDir, "")
	n, err := OpenDefault()
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if n.Dir() != NativeDir || n.Managed() {
		t.Fatalf("OpenDefault() = %s managed=%v, want %s not managed", n.Dir(), n.Managed(), NativeDir)
	}
	if _, err := n.Sweep(SweepOptions{DryRun: true}); !errors.Is(err, ErrNotManaged) {
		t.Fatalf("Sweep of native dir: %v, want ErrNotManaged", err)
	}
}

// A directory we create is 01777 whatever the umask.
func TestOpenCreatesSticky(t *testing.T) {
	old := unix.Umask(0o077)
	defer unix.Umask(old)
	dir := filepath.Join(t.TempDir(), "shm")
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fi, err := os.Lstat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := os.ModeDir | os.ModeSticky | 0o777; fi.Mode() != want {
		t.Fatalf("mode %v, want %v", fi.Mode(), want)
	}
	// An existing directory keeps its mode.
	s2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
	mine := filepath.Join(t.TempDir(), "mine")
	if err := os.Mkdir(mine, 0o700); err != nil {
		t.Fatal(err)
	}
	s3, err := Open(mine)
	if err != nil {
		t.Fatal(err)
	}
	s3.Close()
	if fi, _ := os.Lstat(mine); fi.Mode().Perm() != 0o700 || fi.Mode()&os.ModeSticky != 0 {
		t.Fatalf("existing directory changed to %v", fi.Mode())
	}
	if err := s3.Close(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
}

func TestOpenRefuses(t *testing.T) {
	base := t.TempDir()
	path := func(n string) string { return filepath.Join(base, n) }
	mkdir := func(n string, mode os.FileMode) {
		if err := os.Mkdir(path(n), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path(n), mode); err != nil {
			t.Fatal(err)
		}
	}
	mkdir("target", 0o700)
	if err := os.Symlink(path("target"), path("link")); err != nil {
		t.Fatal(err)
	}
	mkdir("worldwritable", 0o777)
	mkdir("groupwritable", 0o770)
	mkdir("sticky", 0o777|os.ModeSticky)
	if err := os.WriteFile(path("file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		err  syscall.Errno
	}{
		{"link", syscall.ELOOP},
		{"worldwritable", syscall.EACCES},
		{"groupwritable", syscall.EACCES},
		{"file", syscall.ENOTDIR},
		{"missing/shm", syscall.ENOENT},
		{"sticky", 0},
	} {
		s, err := Open(path(c.name))
		if c.err == 0 {
			if err != nil {
				t.Errorf("Open(%s): %v", c.name, err)
			} else {
				s.Close()
			}
			continue
		}
		if err == nil {
			s.Close()
			t.Errorf("Open(%s) succeeded, want %v", c.name, c.err)
			continue
		}
		wantErrno(t, err, "open", c.err)
	}
}

func TestOpenRefusesForeign(t *testing.T) {
	needsRoot(t)
	foreign := filepath.Join(t.TempDir(), "foreign")
	if err := os.Mkdir(foreign, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(foreign, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	s, err := Open(foreign)
	if err == nil {
		s.Close()
		t.Fatal("Open of a directory owned by another uid succeeded")
	}
	wantErrno(t, err, "open", syscall.EACCES)
}

func TestClosedStore(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "shm"))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := s.CreateSemaphore("x", 0o600, 0, false); !errors.Is(err, ErrClosed) {
		t.Fatalf("CreateSemaphore on closed store: %v", err)
	}
	if _, err := s.List(); !errors.Is(err, ErrClosed) {
		t.Fatalf("List on closed store: %v", err)
	}
}

func TestNativeStatus(t *testing.T) {
	for _, c := range []struct {
		dir  string
		want error
	}{
		{filepath.Join(t.TempDir(), "missing"), unix.ENOENT},
		{"/proc", unix.EMEDIUMTYPE}, // a directory, but not a tmpfs
	} {
		if err := nativeStatus(c.dir); err != c.want {
			t.Errorf("nativeStatus(%s) = %v, want %v", c.dir, err, c.want)
		}
	}
	// A tmpfs file that is not a directory: only where /dev/shm is a tmpfs.
	var fs unix.Statfs_t
	if unix.Statfs(NativeDir, &fs) == nil && uint64(fs.Type) == TmpfsMagic {
		f, err := os.CreateTemp(NativeDir, "shmr-native-status-")
		if err == nil {
			defer os.Remove(f.Name())
			f.Close()
			if err := nativeStatus(f.Name()); err != unix.ENOTDIR {
				t.Errorf("nativeStatus(a tmpfs file) = %v, want ENOTDIR", err)
			}
		}
	}
	err := NativeStatus()
	var pe *os.PathError
	if err != nil && (!errors.As(err, &pe) || pe.Path != NativeDir) {
		t.Errorf("NativeStatus() = %#v, want nil or an *os.PathError for %s", err, NativeDir)
	}
}
