package core

import (
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// Store is an open store directory. Every object operation is relative to
// the directory's file descriptor, so a directory renamed or replaced after
// Open cannot redirect us, and nothing below it follows a symlink.
//
// The methods of a Store may be called from several goroutines at once,
// except Close, which must not race with the others.
type Store struct {
	dir     string
	fd      int
	managed bool
	closed  atomic.Bool
}

// ResolveDir returns the directory the preload would use in this process,
// following STORE.md "Which directory": $SHM_REDIRECT_DIR (which must be
// absolute, else EINVAL), else /dev/shm when it is a tmpfs directory the
// effective uid may write and search (native is then true), else
// $TMPDIR/shm when TMPDIR is absolute, else /tmp/shm.
func ResolveDir() (dir string, native bool, err error) {
	return resolveDir(os.Getenv, NativeDir)
}

// resolveDir is ResolveDir with its inputs made replaceable for tests.
func resolveDir(getenv func(string) string, nativeDir string) (string, bool, error) {
	if d := getenv(EnvDir); d != "" {
		if d[0] != '/' {
			return "", false, pathErr("resolve", d, syscall.EINVAL)
		}
		return storePath(d)
	}
	if nativeStatus(nativeDir) == nil {
		return nativeDir, true, nil
	}
	tmp := getenv("TMPDIR")
	if tmp == "" || tmp[0] != '/' {
		tmp = DefaultTmpDir
	}
	return storePath(tmp + "/" + StoreSubdir)
}

// storePath is the store path p as the preload spells it: the same string,
// trailing slashes stripped (with one, O_NOFOLLOW would follow a symlink)
// and nothing else cleaned, or ENAMETOOLONG when it does not fit PATH_MAX.
func storePath(p string) (string, bool, error) {
	if len(p) >= unix.PathMax {
		return "", false, pathErr("resolve", p, syscall.ENAMETOOLONG)
	}
	for len(p) > 1 && p[len(p)-1] == '/' {
		p = p[:len(p)-1]
	}
	return p, false, nil
}

// NativeStatus reports why ResolveDir does not choose the native /dev/shm:
// nil when it does, else an *os.PathError whose Err says why, as the preload
// judges it (STORE.md "Which directory"): the errno of statfs or stat
// (ENOENT), EMEDIUMTYPE when it is not a tmpfs, ENOTDIR, or that of
// faccessat for the effective ids (EACCES; EROFS on a read-only mount).
// It does not look at $SHM_REDIRECT_DIR, which overrides it.
func NativeStatus() error {
	return pathErr("native", NativeDir, nativeStatus(NativeDir))
}

// nativeStatus is NativeStatus for any directory, unwrapped. AT_EACCESS
// checks with the effective ids, as the preload does.
func nativeStatus(dir string) error {
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		return err
	}
	if uint64(fs.Type) != TmpfsMagic {
		return unix.EMEDIUMTYPE
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return unix.ENOTDIR
	}
	return unix.Faccessat(unix.AT_FDCWD, dir, unix.W_OK|unix.X_OK, unix.AT_EACCESS)
}

// Open opens the store directory dir, creating its last component when
// missing (mode 01777, set with fchmod so the umask does not apply; a
// missing parent is ENOENT). The directory must not be a symlink (ELOOP),
// must be a directory (ENOTDIR), must be owned by root or the effective uid
// and, when group- or other-writable, sticky (else EACCES): anyone may write
// /tmp, so the directory is hostile until proven otherwise.
func Open(dir string) (*Store, error) {
	// A trailing slash would make O_NOFOLLOW follow a symlink named dir.
	dir = filepath.Clean(dir)
	created := false
	switch err := unix.Mkdir(dir, 0o700); err {
	case nil:
		created = true
	case unix.EEXIST:
	default:
		return nil, pathErr("open", dir, err)
	}
	s, err := openDir(dir, created)
	if err != nil {
		return nil, err
	}
	s.managed = true
	return s, nil
}

// OpenDefault opens the directory ResolveDir chooses. The native /dev/shm
// is glibc's: opened as glibc uses it (a symlink followed, no ownership
// rules), never created or changed, and the Store is then not Managed:
// Sweep refuses to touch it.
func OpenDefault() (*Store, error) {
	dir, native, err := ResolveDir()
	if err != nil {
		return nil, err
	}
	if !native {
		return Open(dir)
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, pathErr("open", dir, err)
	}
	return &Store{dir: dir, fd: fd}, nil
}

// openDir opens and checks dir; created says whether we just made it.
func openDir(dir string, created bool) (*Store, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == unix.ENOTDIR {
		// Linux checks O_DIRECTORY before O_NOFOLLOW, so a symlink shows
		// as ENOTDIR; STORE.md reports it as ELOOP.
		var st unix.Stat_t
		if unix.Lstat(dir, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			err = unix.ELOOP
		}
	}
	if err != nil {
		return nil, pathErr("open", dir, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, pathErr("open", dir, err)
	}
	euid := uint32(os.Geteuid())
	// Only the directory we made gets its final mode. The owner test keeps
	// us from changing a directory someone slipped in after our mkdir (we
	// could not, unless root, but then we must not either).
	if created && st.Uid == euid {
		if err := unix.Fchmod(fd, DirMode); err != nil {
			unix.Close(fd)
			return nil, pathErr("open", dir, err)
		}
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return nil, pathErr("open", dir, err)
		}
	}
	if err := checkDir(&st, euid); err != nil {
		unix.Close(fd)
		return nil, pathErr("open", dir, err)
	}
	return &Store{dir: dir, fd: fd}, nil
}

// checkDir applies the ownership and mode rules of STORE.md "Directory
// safety" to the stat of an opened directory.
func checkDir(st *unix.Stat_t, euid uint32) error {
	if st.Uid != 0 && st.Uid != euid {
		return syscall.EACCES
	}
	// Without the sticky bit, anyone who may write the directory may
	// replace our objects between our checks and our use of them.
	if st.Mode&0o022 != 0 && st.Mode&unix.S_ISVTX == 0 {
		return syscall.EACCES
	}
	return nil
}

// Dir returns the path the store was opened with.
func (s *Store) Dir() string { return s.dir }

// Managed reports whether this is a store directory (true) or the native
// /dev/shm (false), which Sweep leaves alone.
func (s *Store) Managed() bool { return s.managed }

// Close closes the directory. Semaphores and segments opened through the
// store stay usable: they hold their own mappings.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return pathErr("close", s.dir, ErrClosed)
	}
	return pathErr("close", s.dir, unix.Close(s.fd))
}

// dirfd returns the directory fd, or ErrClosed.
func (s *Store) dirfd() (int, error) {
	if s.closed.Load() {
		return -1, ErrClosed
	}
	return s.fd, nil
}
