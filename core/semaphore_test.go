package core

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestSemaphoreBasics(t *testing.T) {
	s := newStore(t)
	defer s.UnlinkSemaphore("basic")
	sem, err := s.CreateSemaphore("/basic", 0o600, 2, true)
	if err != nil {
		t.Fatal(err)
	}
	defer sem.Close()
	if sem.Name() != "/basic" {
		t.Fatalf("Name() = %q", sem.Name())
	}
	img, err := os.ReadFile(filepath.Join(s.Dir(), "sem.basic"))
	if err != nil || string(img) != string(semImage(2)) {
		t.Fatalf("file = %x, %v; want %x", img, err, semImage(2))
	}
	for range 2 {
		if err := sem.TryWait(); err != nil {
			t.Fatal(err)
		}
	}
	err = sem.TryWait()
	wantErrno(t, err, "sem_trywait", syscall.EAGAIN)
	if !errors.Is(err, ErrWouldBlock) {
		t.Fatalf("TryWait: %v is not ErrWouldBlock", err)
	}
	start := time.Now()
	err = sem.TimedWait(20 * time.Millisecond)
	wantErrno(t, err, "sem_timedwait", syscall.ETIMEDOUT)
	if !errors.Is(err, ErrTimeout) || time.Since(start) < 20*time.Millisecond {
		t.Fatalf("TimedWait: %v after %v", err, time.Since(start))
	}
	wantErrno(t, sem.TimedWait(-time.Second), "sem_timedwait", syscall.ETIMEDOUT)
	// A second handle is another mapping of the same file.
	other, err := s.OpenSemaphore("basic")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.Post(); err != nil {
		t.Fatal(err)
	}
	if v, err := sem.Value(); v != 1 || err != nil {
		t.Fatalf("Value() = %d, %v; want 1", v, err)
	}
	if err := sem.TimedWait(time.Second); err != nil {
		t.Fatal(err)
	}
	// The waiter count is back to zero after the timeouts.
	if d := *(*uint64)(unsafePointer(sem.mem)); d != 0 {
		t.Fatalf("data word %#x after waits, want 0", d)
	}
}

func TestSemaphoreOverflow(t *testing.T) {
	s := newStore(t)
	defer s.UnlinkSemaphore("max")
	_, err := s.CreateSemaphore("max", 0o600, SemValueMax+1, false)
	wantErrno(t, err, "sem_open", syscall.EINVAL)
	sem, err := s.CreateSemaphore("max", 0o600, SemValueMax, false)
	if err != nil {
		t.Fatal(err)
	}
	defer sem.Close()
	wantErrno(t, sem.Post(), "sem_post", syscall.EOVERFLOW)
	if v, _ := sem.Value(); v != SemValueMax {
		t.Fatalf("Value() = %d", v)
	}
}

func TestSemaphoreExclusive(t *testing.T) {
	old := unix.Umask(0o027)
	defer unix.Umask(old)
	s := newStore(t)
	defer s.UnlinkSemaphore("x")
	_, err := s.OpenSemaphore("x")
	wantErrno(t, err, "sem_open", syscall.ENOENT)
	a, err := s.CreateSemaphore("x", 0o666, 5, true)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if fi, _ := os.Lstat(filepath.Join(s.Dir(), "sem.x")); fi.Mode() != 0o640 {
		t.Fatalf("mode %v, want 0640 (0666 less umask 027)", fi.Mode())
	}
	_, err = s.CreateSemaphore("x", 0o600, 0, true)
	wantErrno(t, err, "sem_open", syscall.EEXIST)
	if !errors.Is(err, os.ErrExist) {
		t.Fatal("EEXIST is not os.ErrExist")
	}
	// Without exclusive the existing one is opened; value is ignored.
	b, err := s.CreateSemaphore("x", 0o600, 9, false)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if v, _ := b.Value(); v != 5 {
		t.Fatalf("Value() = %d, want 5", v)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	if err := a.Post(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Post after Close: %v", err)
	}
	if err := s.UnlinkSemaphore("x"); err != nil {
		t.Fatal(err)
	}
	wantErrno(t, s.UnlinkSemaphore("x"), "sem_unlink", syscall.ENOENT)
	if v, _ := b.Value(); v != 5 {
		t.Fatal("unlink disturbed an open semaphore")
	}
}

// Whatever sits at a semaphore's name that is not a valid image is refused
// without ever being mapped, with or without create.
func TestSemaphoreBadFiles(t *testing.T) {
	needsRoot(t)
	s := newStore(t)
	at := func(n string) string { return filepath.Join(s.Dir(), SemPrefix+n) }
	bad := semImage(0)
	bad[semPrivateOffset] = 0 // a process-private semaphore
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(at("short"), semImage(1)[:16], 0o600))
	must(os.WriteFile(at("long"), append(semImage(1), 0), 0o600))
	must(os.WriteFile(at("private"), bad, 0o600))
	must(unix.Mkfifo(at("fifo"), 0o600))
	must(os.Mkdir(at("dir"), 0o700))
	must(os.WriteFile(filepath.Join(s.Dir(), "target"), semImage(1), 0o600))
	must(os.Symlink("target", at("link")))
	must(os.Symlink("nowhere", at("dangling")))
	must(os.WriteFile(at("foreign"), semImage(1), 0o644))
	must(os.Chown(at("foreign"), 65534, 65534))
	defer func() {
		for _, n := range []string{"short", "long", "private", "fifo", "link", "dangling", "foreign"} {
			os.Remove(at(n))
		}
		os.Remove(at("dir"))
		os.Remove(filepath.Join(s.Dir(), "target"))
	}()
	for _, c := range []struct {
		name         string
		open, create syscall.Errno
	}{
		{"short", syscall.EINVAL, syscall.EINVAL},
		{"long", syscall.EINVAL, syscall.EINVAL},
		{"private", syscall.EINVAL, syscall.EINVAL},
		{"fifo", syscall.EINVAL, syscall.EINVAL},
		{"dir", syscall.EINVAL, syscall.EINVAL},
		{"link", syscall.ELOOP, syscall.ELOOP},
		{"dangling", syscall.ELOOP, syscall.ELOOP},
		{"foreign", 0, syscall.EACCES},
	} {
		sem, err := s.OpenSemaphore(c.name)
		if c.open == 0 {
			if err != nil {
				t.Errorf("OpenSemaphore(%s): %v", c.name, err)
			} else {
				sem.Close()
			}
		} else {
			wantErrno(t, err, "sem_open", c.open)
		}
		_, err = s.CreateSemaphore(c.name, 0o600, 0, false)
		wantErrno(t, err, "sem_open", c.create)
		_, err = s.CreateSemaphore(c.name, 0o600, 0, true)
		wantErrno(t, err, "sem_open", syscall.EEXIST)
	}
	// The dangling link was not followed: nothing was created behind it.
	if _, err := os.Lstat(filepath.Join(s.Dir(), "nowhere")); !os.IsNotExist(err) {
		t.Fatalf("a symlink was followed: %v", err)
	}
	// No temporary file is left behind (the directory is not listed).
	assertOnly(t, s, "sem.short", "sem.long", "sem.private", "sem.fifo", "sem.link",
		"sem.dangling", "sem.foreign", "target")
}

// assertOnly fails unless the store holds exactly the files named.
func assertOnly(t *testing.T, s *Store, files ...string) {
	t.Helper()
	objs, err := s.entries()
	if err != nil {
		t.Fatal(err)
	}
	var have []string
	for _, o := range objs {
		have = append(have, o.File)
	}
	slices.Sort(files)
	if !slices.Equal(have, files) {
		t.Fatalf("store holds %q, want %q", have, files)
	}
}

// Goroutines racing to create one semaphore all end up on the same inode.
func TestSemaphoreCreateRaceGoroutines(t *testing.T) {
	s := newStore(t)
	defer s.UnlinkSemaphore("race")
	var wg sync.WaitGroup
	inos := make([]uint64, 64)
	errs := make([]error, 64)
	start := make(chan struct{})
	for i := range inos {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			sem, err := s.CreateSemaphore("race", 0o600, 3, false)
			if err != nil {
				errs[i] = err
				return
			}
			defer sem.Close()
			var st unix.Stat_t
			errs[i] = unix.Fstatat(s.fd, "sem.race", &st, unix.AT_SYMLINK_NOFOLLOW)
			inos[i] = st.Ino
		}()
	}
	close(start)
	wg.Wait()
	for i := range inos {
		if errs[i] != nil || inos[i] != inos[0] {
			t.Fatalf("goroutine %d: inode %d, %v; goroutine 0: inode %d", i, inos[i], errs[i], inos[0])
		}
	}
	assertOnly(t, s, "sem.race")
}

// Processes racing to create one semaphore all end up on the same inode.
func TestSemaphoreCreateRaceProcesses(t *testing.T) {
	s := newStore(t)
	defer s.UnlinkSemaphore("prace")
	children := make([]*child, 16)
	for i := range children {
		children[i] = startChild(t, "create", s.Dir(), "prace")
	}
	var first string
	for i, c := range children {
		ino := c.line(t)
		c.wait(t)
		if i == 0 {
			first = ino
		} else if ino != first {
			t.Fatalf("child %d saw inode %s, child 0 saw %s", i, ino, first)
		}
	}
	assertOnly(t, s, "sem.prace")
}

// Wait sleeps until Post, across goroutines and mappings.
func TestSemaphoreWaitPostGoroutines(t *testing.T) {
	s := newStore(t)
	defer s.UnlinkSemaphore("wp")
	sem, err := s.CreateSemaphore("wp", 0o600, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	defer sem.Close()
	const waiters, rounds = 8, 200
	var wg sync.WaitGroup
	for range waiters {
		other, err := s.OpenSemaphore("wp")
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer other.Close()
			for range rounds {
				if err := other.Wait(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for range waiters * rounds {
		if err := sem.Post(); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if d := *(*uint64)(unsafePointer(sem.mem)); d != 0 {
		t.Fatalf("data word %#x, want 0", d)
	}
}

// Close while a goroutine waits leaves the mapping until the wait returns.
func TestSemaphoreCloseWhileWaiting(t *testing.T) {
	s := newStore(t)
	defer s.UnlinkSemaphore("cw")
	sem, err := s.CreateSemaphore("cw", 0o600, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.OpenSemaphore("cw")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	done := make(chan error)
	go func() { done <- sem.Wait() }()
	time.Sleep(10 * time.Millisecond)
	if err := sem.Close(); err != nil {
		t.Fatal(err)
	}
	other.Post()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A Go semaphore and one in another Go process play ping-pong.
func TestSemaphoreCrossProcess(t *testing.T) {
	s := newStore(t)
	defer s.UnlinkSemaphore("ping")
	defer s.UnlinkSemaphore("pong")
	ping, err := s.CreateSemaphore("ping", 0o600, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	defer ping.Close()
	pong, err := s.CreateSemaphore("pong", 0o600, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	defer pong.Close()
	const rounds = 500
	c := startChild(t, "pingpong", s.Dir(), "500")
	for range rounds {
		if err := ping.Post(); err != nil {
			t.Fatal(err)
		}
		if err := pong.TimedWait(10 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if l := c.line(t); l != "ok" {
		t.Fatalf("child said %q", l)
	}
	c.wait(t)
}
