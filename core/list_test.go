package core

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestParseMapsLine(t *testing.T) {
	for _, c := range []struct {
		line string
		id   FileID
		ok   bool
	}{
		{"7f3c5a000000-7f3c5a001000 rw-s 00000000 fe:01 1234567                    /tmp/shm/sem.x\n",
			FileID{unix.Mkdev(0xfe, 1), 1234567}, true},
		{"7f3c5a000000-7f3c5a001000 rw-s 00000000 103:1a 42 /tmp/shm/x (deleted)\n",
			FileID{unix.Mkdev(0x103, 0x1a), 42}, true},
		{"7ffd1000-7ffd2000 rw-p 00000000 00:00 0                          [stack]\n", FileID{}, false},
		{"55d0-55d1 rw-p 00000000 00:00 0\n", FileID{}, false},
		{"garbage\n", FileID{}, false},
		{"", FileID{}, false},
	} {
		id, ok := parseMapsLine([]byte(c.line))
		if id != c.id || ok != c.ok {
			t.Errorf("parseMapsLine(%q) = %v, %v; want %v, %v", c.line, id, ok, c.id, c.ok)
		}
	}
}

// Holders finds an open file by its inode even after it was unlinked.
func TestHoldersDeleted(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	os.Remove(f.Name())
	id := fileID(&st)
	held, err := Holders(map[FileID]bool{id: true, {Dev: id.Dev, Ino: 1<<62 + 7}: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(held[id], os.Getpid()) || len(held) != 1 {
		t.Fatalf("Holders = %v, want %d holding %v", held, os.Getpid(), id)
	}
}

// listFixture makes a semaphore "s" (value 7), a segment "m" and a short, bad semaphore file,
// removed at the end of the test.
func listFixture(t *testing.T, s *Store) {
	t.Cleanup(func() {
		s.UnlinkSemaphore("s")
		s.UnlinkSegment("m")
		s.UnlinkSemaphore("bad")
	})
	sem, err := s.CreateSemaphore("s", 0o640, 7, true)
	if err != nil {
		t.Fatal(err)
	}
	sem.Close()
	seg, err := s.CreateSegment("m", 4096, 0o600, true)
	if err != nil {
		t.Fatal(err)
	}
	seg.Close()
	if err := os.WriteFile(filepath.Join(s.Dir(), "sem.bad"), []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestList(t *testing.T) {
	s := newStore(t)
	listFixture(t, s)
	// Children hold the segment by a mapping only and the semaphore by a
	// mapping; we hold nothing.
	cm := startChild(t, "map", s.Dir(), "m")
	cs := startChild(t, "open", s.Dir(), "s")
	cm.line(t)
	cs.line(t)
	before := time.Now()
	objs, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 3 {
		t.Fatalf("List = %+v", objs)
	}
	want := []struct {
		kind  Kind
		name  string
		file  string
		size  int64
		mode  os.FileMode
		value int
		pid   int
	}{
		{KindSemaphore, "bad", "sem.bad", 5, 0o600, -1, 0},
		{KindSemaphore, "s", "sem.s", SemSize, 0o640 &^ currentUmask(), 7, cs.cmd.Process.Pid},
		{KindSegment, "m", "m", 4096, 0o600, -1, cm.cmd.Process.Pid},
	}
	slices.SortFunc(objs, func(a, b Object) int { return int(a.Kind) - int(b.Kind) })
	for i, w := range want {
		o := objs[i]
		if o.Kind != w.kind || o.Name != w.name || o.File != w.file || o.Size != w.size ||
			o.Mode != w.mode || o.Value != w.value || o.UID != os.Geteuid() {
			t.Errorf("object %d = %+v, want %+v", i, o, w)
		}
		if (w.pid == 0) != (len(o.Holders) == 0) || (w.pid != 0 && !slices.Equal(o.Holders, []int{w.pid})) {
			t.Errorf("%s held by %v, want %d", o.File, o.Holders, w.pid)
		}
		if o.ModTime.After(before) || o.ChangeTime.After(before) || o.ModTime.IsZero() {
			t.Errorf("%s times %v %v", o.File, o.ModTime, o.ChangeTime)
		}
	}
	if KindSegment.String() != "segment" || KindSemaphore.String() != "semaphore" {
		t.Error("Kind.String")
	}
	cm.wait(t)
	cs.wait(t)
	objs, _ = s.List()
	for _, o := range objs {
		if len(o.Holders) != 0 {
			t.Errorf("%s still held by %v after the children exited", o.File, o.Holders)
		}
	}
}

// currentUmask reads the umask without changing it for long.
func currentUmask() os.FileMode {
	m := unix.Umask(0)
	unix.Umask(m)
	return os.FileMode(m)
}

// Holders is quick enough to run on every List and Sweep.
func BenchmarkHolders(b *testing.B) {
	want := map[FileID]bool{{Dev: 1, Ino: 1}: true}
	for b.Loop() {
		if _, err := Holders(want); err != nil {
			b.Fatal(err)
		}
	}
}
