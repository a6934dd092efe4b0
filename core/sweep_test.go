package core

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// names returns the files of objs.
func names(objs []Object) []string {
	var n []string
	for _, o := range objs {
		n = append(n, o.File)
	}
	slices.Sort(n)
	return n
}

// sweepFixture fills s with what TestSweep sweeps: leaked objects, a foreign one, a FIFO (never
// an object), and two that will be held; they are removed at the end of the test.
func sweepFixture(t *testing.T, s *Store) (mk func(string)) {
	at := func(n string) string { return filepath.Join(s.Dir(), n) }
	mk = func(n string) {
		t.Helper()
		seg, err := s.CreateSegment(n, 4096, 0o600, true)
		if err != nil {
			t.Fatal(err)
		}
		seg.Close()
	}
	mk("leaked")
	mk("held-by-us")
	mk("held-by-child")
	mk("foreign")
	if err := os.Chown(at("foreign"), 65534, 65534); err != nil {
		t.Fatal(err)
	}
	sem, err := s.CreateSemaphore("leaked", 0o600, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	sem.Close()
	if err := unix.Mkfifo(at("fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, n := range []string{"leaked", "held-by-us", "held-by-child", "foreign", "fifo", "sem.leaked", "young"} {
			os.Remove(at(n))
		}
	})
	return mk
}

func TestSweep(t *testing.T) {
	needsRoot(t)
	s := newStore(t)
	at := func(n string) string { return filepath.Join(s.Dir(), n) }
	mk := sweepFixture(t, s)
	ours, err := s.OpenSegment("held-by-us")
	if err != nil {
		t.Fatal(err)
	}
	defer ours.Close()
	c := startChild(t, "map", s.Dir(), "held-by-child")
	c.line(t)

	// Everything is young: the default grace spares it all.
	if got, err := s.Sweep(SweepOptions{Grace: DefaultGrace}); err != nil || len(got) != 0 {
		t.Fatalf("Sweep with default grace removed %v, %v", names(got), err)
	}
	if _, err := s.Sweep(SweepOptions{Grace: -time.Second}); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("Sweep with a negative grace: %v, want EINVAL", err)
	}
	// Old mtimes do not help: the ctime is still new.
	old := time.Now().Add(-time.Hour)
	os.Chtimes(at("leaked"), old, old)
	if got, err := s.Sweep(SweepOptions{Grace: time.Hour / 2}); err != nil || len(got) != 0 {
		t.Fatalf("Sweep removed %v (ctime is new), %v", names(got), err)
	}
	// With a short grace, once it passed, only the leaked objects go.
	// (Margins wide enough for a loaded machine running -race.)
	time.Sleep(300 * time.Millisecond)
	mk("young")
	opts := SweepOptions{Grace: 200 * time.Millisecond, DryRun: true}
	want := []string{"leaked", "sem.leaked"}
	got, err := s.Sweep(opts)
	if err != nil || !slices.Equal(names(got), want) {
		t.Fatalf("dry run: %v, %v; want %v", names(got), err, want)
	}
	if _, err := os.Lstat(at("leaked")); err != nil {
		t.Fatal("dry run removed a file")
	}
	opts.DryRun = false
	got, err = s.Sweep(opts)
	if err != nil || !slices.Equal(names(got), want) {
		t.Fatalf("Sweep: %v, %v; want %v", names(got), err, want)
	}
	assertOnly(t, s, "fifo", "foreign", "held-by-child", "held-by-us", "young")

	// No grace at all: the young one goes too, the held ones stay.
	got, err = s.Sweep(SweepOptions{})
	if err != nil || !slices.Equal(names(got), []string{"young"}) {
		t.Fatalf("Sweep: %v, %v; want [young]", names(got), err)
	}
	// Released, they go.
	c.wait(t)
	ours.Close()
	got, err = s.Sweep(SweepOptions{})
	if err != nil || !slices.Equal(names(got), []string{"held-by-child", "held-by-us"}) {
		t.Fatalf("Sweep: %v, %v", names(got), err)
	}
	assertOnly(t, s, "fifo", "foreign")
}

// A file replaced between the scan and the removal is left alone.
func TestSweepReplaced(t *testing.T) {
	s := newStore(t)
	defer s.UnlinkSegment("x")
	seg, err := s.CreateSegment("x", 1, 0o600, true)
	if err != nil {
		t.Fatal(err)
	}
	seg.Close()
	objs, err := s.entries()
	if err != nil {
		t.Fatal(err)
	}
	// Both exist at once, so the new file cannot reuse the old inode.
	seg, err = s.CreateSegment("y", 1, 0o600, true)
	if err != nil {
		t.Fatal(err)
	}
	seg.Close()
	if err := os.Rename(filepath.Join(s.Dir(), "y"), filepath.Join(s.Dir(), "x")); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.sweepOne(&objs[0], false); ok || err != nil {
		t.Fatalf("sweepOne removed a replaced file: %v, %v", ok, err)
	}
	assertOnly(t, s, "x")
}

func TestSweepNotManaged(t *testing.T) {
	dir := t.TempDir()
	s, err := openDir(dir, false) // as OpenDefault opens the native /dev/shm
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Sweep(SweepOptions{}); !errors.Is(err, ErrNotManaged) {
		t.Fatalf("Sweep: %v, want ErrNotManaged", err)
	}
}

// A dead tracker's journal is the Python tracker's to read: listed as a journal, never swept.
func TestSweepLeavesJournals(t *testing.T) {
	s := newStore(t)
	journal := filepath.Join(s.Dir(), JournalPrefix+"12345.67890")
	if err := os.WriteFile(journal, []byte("REGISTER:/x:semaphore\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(journal)
	objs, err := s.List()
	if err != nil || len(objs) != 1 || objs[0].Kind != KindJournal || objs[0].Kind.String() != "journal" {
		t.Fatalf("List = %+v, %v; want one journal", objs, err)
	}
	gone, err := s.Sweep(SweepOptions{})
	if err != nil || len(gone) != 0 {
		t.Fatalf("Sweep removed %v (%v); a journal is not an object", names(gone), err)
	}
}
