package core

import (
	"encoding/binary"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The layout of glibc's struct new_sem on LP64 (see STORE.md): a 64-bit
// data word, value in the low half and waiter count in the high half, then
// the int private. The futex word is the low half, which is at offset 0 on
// the little-endian machines this format is defined for.
const (
	semValueMask = 1<<semNwaitersShift - 1
	semOneWaiter = 1 << semNwaitersShift
	// semLeave added to the data word subtracts one waiter.
	semLeave = ^uint64(semOneWaiter - 1)
)

// Semaphore is a named POSIX semaphore of a store, mapped into this
// process. Its methods follow glibc's futex protocol on the shared mapping,
// so it interoperates with sem_wait and sem_post in any other process that
// maps the same file, through the preload or natively. Its methods may be
// called from several goroutines at once.
type Semaphore struct {
	name string
	mem  []byte

	mu     sync.Mutex
	refs   int // 1 for the open semaphore + 1 per operation in flight
	closed bool
}

// CreateSemaphore opens the semaphore name, creating it with mode (subject
// to the umask, as glibc) and value if it does not exist: sem_open with
// O_CREAT, and O_EXCL when exclusive (then an existing one is EEXIST).
// Without exclusive, an existing semaphore of another owner is EACCES: we
// never adopt another user's object by creating it.
func (s *Store) CreateSemaphore(name string, mode os.FileMode, value uint32, exclusive bool) (*Semaphore, error) {
	const op = "sem_open"
	file, err := semFile(name)
	if err != nil {
		return nil, pathErr(op, name, err)
	}
	if value > SemValueMax {
		return nil, pathErr(op, name, syscall.EINVAL)
	}
	dfd, err := s.dirfd()
	if err != nil {
		return nil, pathErr(op, name, err)
	}
	// As glibc's try_again loop: the existing file first, else publish a new
	// one; losing the publication race sends us back to the winner's file.
	for {
		if !exclusive {
			mem, err := openSem(dfd, file, true)
			if err == nil {
				return newSemaphore(name, mem), nil
			}
			if err != syscall.ENOENT {
				return nil, pathErr(op, name, err)
			}
		}
		mem, err := createSem(dfd, file, mode, value)
		if err == nil {
			return newSemaphore(name, mem), nil
		}
		if err != syscall.EEXIST || exclusive {
			return nil, pathErr(op, name, err)
		}
	}
}

// OpenSemaphore opens the existing semaphore name: sem_open without
// O_CREAT. The file's permission bits decide who may open it.
func (s *Store) OpenSemaphore(name string) (*Semaphore, error) {
	const op = "sem_open"
	file, err := semFile(name)
	if err != nil {
		return nil, pathErr(op, name, err)
	}
	dfd, err := s.dirfd()
	if err != nil {
		return nil, pathErr(op, name, err)
	}
	mem, err := openSem(dfd, file, false)
	if err != nil {
		return nil, pathErr(op, name, err)
	}
	return newSemaphore(name, mem), nil
}

// UnlinkSemaphore removes the semaphore name; processes that have it open
// keep using it. Any fault in the name is ENOENT, EPERM is EACCES (glibc).
func (s *Store) UnlinkSemaphore(name string) error {
	const op = "sem_unlink"
	file, err := semFile(name)
	if err != nil {
		return pathErr(op, name, unlinkNameErr(err))
	}
	return s.unlink(op, name, file)
}

// unlink removes file for operation op on name.
func (s *Store) unlink(op, name, file string) error {
	dfd, err := s.dirfd()
	if err != nil {
		return pathErr(op, name, err)
	}
	err = unix.Unlinkat(dfd, file, 0)
	if err == unix.EPERM {
		err = syscall.EACCES
	}
	return pathErr(op, name, err)
}

// openSem maps the existing semaphore file. It refuses (EINVAL) anything
// that is not a valid semaphore image, so that no later access can fault
// on a short file. create adds the O_CREAT rule on foreign owners.
func openSem(dfd int, file string, create bool) ([]byte, error) {
	// O_NONBLOCK: a FIFO planted at the name must not block the open.
	fd, err := unix.Openat(dfd, file, unix.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err == unix.EISDIR {
		return nil, syscall.EINVAL
	}
	if err != nil {
		return nil, errnoOf(err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, errnoOf(err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, syscall.EINVAL
	}
	if create && st.Uid != uint32(os.Geteuid()) {
		return nil, syscall.EACCES
	}
	if st.Size != SemSize {
		return nil, syscall.EINVAL
	}
	var priv [4]byte
	if n, err := unix.Pread(fd, priv[:], semPrivateOffset); err != nil || n != len(priv) {
		return nil, syscall.EINVAL
	}
	if binary.LittleEndian.Uint32(priv[:]) != SemPrivateShared {
		return nil, syscall.EINVAL
	}
	mem, err := unix.Mmap(fd, 0, SemSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, errnoOf(err)
	}
	return mem, nil
}

// semImage returns the 32 bytes of a new semaphore of value v.
func semImage(v uint32) []byte {
	img := make([]byte, SemSize)
	binary.LittleEndian.PutUint64(img[0:], uint64(v))
	binary.LittleEndian.PutUint32(img[semPrivateOffset:], SemPrivateShared)
	return img
}

// tmpChars are the characters of the random part of a temporary name.
const tmpChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// createSem publishes a new semaphore file: the complete image is written
// to a fresh temporary file which link() then gives its name, so no process
// ever sees a partial semaphore. It returns EEXIST when file exists.
func createSem(dfd int, file string, mode os.FileMode, value uint32) ([]byte, error) {
	tmp := []byte(semTmpTemplate)
	fd := -1
	for range semTmpRetries {
		for i := len(SemPrefix); i < len(tmp); i++ {
			tmp[i] = tmpChars[rand.IntN(len(tmpChars))]
		}
		var err error
		fd, err = unix.Openat(dfd, string(tmp),
			unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(mode.Perm()))
		if err == nil {
			break
		}
		if err != unix.EEXIST {
			return nil, errnoOf(err)
		}
	}
	if fd < 0 {
		return nil, syscall.EAGAIN
	}
	// The temporary name never outlives this call, success or not.
	defer unix.Unlinkat(dfd, string(tmp), 0)
	defer unix.Close(fd)
	img := semImage(value)
	for off := 0; off < len(img); {
		n, err := unix.Pwrite(fd, img[off:], int64(off))
		if err != nil {
			return nil, errnoOf(err)
		}
		off += n
	}
	mem, err := unix.Mmap(fd, 0, SemSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, errnoOf(err)
	}
	if err := unix.Linkat(dfd, string(tmp), dfd, file, 0); err != nil {
		unix.Munmap(mem)
		return nil, errnoOf(err)
	}
	return mem, nil
}

func newSemaphore(name string, mem []byte) *Semaphore {
	return &Semaphore{name: name, mem: mem, refs: 1}
}

// Name returns the name the semaphore was opened with.
func (m *Semaphore) Name() string { return m.name }

// acquire pins the mapping for one operation and returns the data word.
// Close only unmaps once no operation is in flight, so a goroutine blocked
// in Wait never touches unmapped memory.
func (m *Semaphore) acquire(op string) (*uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, pathErr(op, m.name, ErrClosed)
	}
	m.refs++
	return (*uint64)(unsafe.Pointer(&m.mem[0])), nil
}

// release drops a reference taken by acquire or by the open semaphore.
func (m *Semaphore) release() {
	m.mu.Lock()
	m.refs--
	last := m.refs == 0
	m.mu.Unlock()
	if last {
		unix.Munmap(m.mem)
	}
}

// Close closes the semaphore (sem_close). The mapping goes away when the
// operations in flight, if any, return; the file stays (see
// UnlinkSemaphore).
func (m *Semaphore) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return pathErr("sem_close", m.name, ErrClosed)
	}
	m.closed = true
	m.mu.Unlock()
	m.release()
	return nil
}

// futexWord is the low 32-bit half of the data word, where waiters sleep.
func futexWord(p *uint64) *uint32 { return (*uint32)(unsafe.Pointer(p)) }

// Value returns the semaphore's value (sem_getvalue).
func (m *Semaphore) Value() (int, error) {
	p, err := m.acquire("sem_getvalue")
	if err != nil {
		return 0, err
	}
	defer m.release()
	return int(atomic.LoadUint64(p) & semValueMask), nil
}

// Post increments the value and wakes one waiter if any (sem_post). At
// SEM_VALUE_MAX it fails with EOVERFLOW.
func (m *Semaphore) Post() error {
	const op = "sem_post"
	p, err := m.acquire(op)
	if err != nil {
		return err
	}
	defer m.release()
	for {
		d := atomic.LoadUint64(p)
		if d&semValueMask == SemValueMax {
			return pathErr(op, m.name, syscall.EOVERFLOW)
		}
		if atomic.CompareAndSwapUint64(p, d, d+1) {
			if d>>semNwaitersShift > 0 {
				return pathErr(op, m.name, futexWake(futexWord(p), 1))
			}
			return nil
		}
	}
}

// tryDown takes a token if the value is positive.
func tryDown(p *uint64) bool {
	for {
		d := atomic.LoadUint64(p)
		if d&semValueMask == 0 {
			return false
		}
		if atomic.CompareAndSwapUint64(p, d, d-1) {
			return true
		}
	}
}

// TryWait decrements the value if it is positive (sem_trywait), else it
// fails at once with an error wrapping ErrWouldBlock (EAGAIN).
func (m *Semaphore) TryWait() error {
	const op = "sem_trywait"
	p, err := m.acquire(op)
	if err != nil {
		return err
	}
	defer m.release()
	if !tryDown(p) {
		return pathErr(op, m.name, ErrWouldBlock)
	}
	return nil
}

// Wait decrements the value, sleeping while it is zero (sem_wait). Signals
// do not interrupt it.
func (m *Semaphore) Wait() error { return m.wait("sem_wait", false, time.Time{}) }

// TimedWait is Wait for at most d; then it fails with an error wrapping
// ErrTimeout (ETIMEDOUT). With d <= 0 it only takes an available token.
func (m *Semaphore) TimedWait(d time.Duration) error {
	return m.wait("sem_timedwait", true, time.Now().Add(d))
}

// wait is glibc's __new_sem_wait_fast followed by __new_sem_wait_slow64.
func (m *Semaphore) wait(op string, timed bool, deadline time.Time) error {
	p, err := m.acquire(op)
	if err != nil {
		return err
	}
	defer m.release()
	if tryDown(p) {
		return nil
	}
	// Register as a waiter so that every post until we leave wakes someone.
	d := atomic.AddUint64(p, semOneWaiter)
	for {
		if d&semValueMask != 0 {
			// Take a token and stop being a waiter in one step.
			if atomic.CompareAndSwapUint64(p, d, d-1-semOneWaiter) {
				return nil
			}
			d = atomic.LoadUint64(p)
			continue
		}
		var ts *unix.Timespec
		if timed {
			left := time.Until(deadline)
			if left <= 0 {
				atomic.AddUint64(p, semLeave)
				return pathErr(op, m.name, ErrTimeout)
			}
			t := unix.NsecToTimespec(left.Nanoseconds())
			ts = &t
		}
		switch err := futexWait(futexWord(p), 0, ts); err {
		case nil, unix.EAGAIN, unix.EINTR:
			// A wake-up, a change of the value, or one of the Go runtime's
			// signals: look again. A timeout shows up as left <= 0 above.
		case unix.ETIMEDOUT:
		default:
			atomic.AddUint64(p, semLeave)
			return pathErr(op, m.name, err)
		}
		d = atomic.LoadUint64(p)
	}
}
