package core

import (
	"os"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// Segment is a named shared-memory segment of a store, mapped into this
// process with MAP_SHARED. It keeps its file open, as a Python
// SharedMemory does, so it shows as held in List while open.
type Segment struct {
	name   string
	fd     int
	mem    []byte
	size   int64
	closed atomic.Bool
}

// CreateSegment opens the segment name, creating it with mode (subject to
// the umask) if it does not exist: shm_open with O_CREAT, and O_EXCL when
// exclusive (then an existing one is EEXIST). Without exclusive, an existing
// segment of another owner is EACCES. A segment smaller than size is
// extended to size (ftruncate); a larger one is never shrunk, since that
// would make other processes' mappings fault. The whole segment is mapped.
func (s *Store) CreateSegment(name string, size int64, mode os.FileMode, exclusive bool) (*Segment, error) {
	flags := unix.O_RDWR | unix.O_CREAT
	if exclusive {
		flags |= unix.O_EXCL
	}
	if size < 0 {
		return nil, pathErr("shm_open", name, syscall.EINVAL)
	}
	return s.openSegment(name, flags, mode, size)
}

// OpenSegment opens the existing segment name read-write and maps it whole.
func (s *Store) OpenSegment(name string) (*Segment, error) {
	return s.openSegment(name, unix.O_RDWR, 0, 0)
}

// UnlinkSegment removes the segment name (shm_unlink); processes that have
// it open or mapped keep it. Any fault in the name is ENOENT, EPERM is
// EACCES.
func (s *Store) UnlinkSegment(name string) error {
	const op = "shm_unlink"
	file, err := segFile(name)
	if err != nil {
		return pathErr(op, name, unlinkNameErr(err))
	}
	return s.unlink(op, name, file)
}

func (s *Store) openSegment(name string, flags int, mode os.FileMode, size int64) (*Segment, error) {
	const op = "shm_open"
	file, err := segFile(name)
	if err != nil {
		return nil, pathErr(op, name, err)
	}
	dfd, err := s.dirfd()
	if err != nil {
		return nil, pathErr(op, name, err)
	}
	// O_NONBLOCK while checking: a FIFO planted at the name must not block.
	fd, err := unix.Openat(dfd, file, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, uint32(mode.Perm()))
	if err == unix.EISDIR {
		err = syscall.EINVAL // as glibc's shm_open
	}
	if err != nil {
		return nil, pathErr(op, name, err)
	}
	seg, err := mapSegment(fd, flags, size)
	if err != nil {
		unix.Close(fd)
		return nil, pathErr(op, name, err)
	}
	seg.name = name
	return seg, nil
}

// mapSegment checks the opened file fd and maps it.
func mapSegment(fd, flags int, size int64) (*Segment, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, syscall.EINVAL
	}
	if flags&unix.O_CREAT != 0 && flags&unix.O_EXCL == 0 && st.Uid != uint32(os.Geteuid()) {
		return nil, syscall.EACCES
	}
	// The checks are done: O_NONBLOCK goes, since no caller here asks for it.
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err == nil {
		_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl&^unix.O_NONBLOCK)
	}
	if err != nil {
		return nil, err
	}
	if size > st.Size {
		if err := unix.Ftruncate(fd, size); err != nil {
			return nil, err
		}
		st.Size = size
	}
	seg := &Segment{fd: fd, size: st.Size}
	if st.Size > 0 { // mmap of zero bytes is EINVAL; an empty segment maps nothing
		if int64(int(st.Size)) != st.Size {
			return nil, syscall.EFBIG
		}
		mem, err := unix.Mmap(fd, 0, int(st.Size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			return nil, err
		}
		seg.mem = mem
	}
	return seg, nil
}

// Name returns the name the segment was opened with.
func (g *Segment) Name() string { return g.name }

// Bytes returns the shared mapping. It is valid until Close; a process
// that truncates the file under it makes accesses beyond the end fault.
func (g *Segment) Bytes() []byte { return g.mem }

// Size returns the size of the segment when it was opened.
func (g *Segment) Size() int64 { return g.size }

// Close unmaps the segment and closes its file; the segment itself stays
// (see UnlinkSegment).
func (g *Segment) Close() error {
	if g.closed.Swap(true) {
		return pathErr("shm_close", g.name, ErrClosed)
	}
	var err error
	if g.mem != nil {
		err = unix.Munmap(g.mem)
		g.mem = nil
	}
	if cerr := unix.Close(g.fd); err == nil {
		err = cerr
	}
	return pathErr("shm_close", g.name, err)
}
