package core

import (
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// buildSemC compiles testdata/semc.c (a glibc sem_* client of a semaphore file).
func buildSemC(t *testing.T) string {
	t.Helper()
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Fatal("no C compiler (cc): tests/install-deps.sh installs gcc")
	}
	dir := t.TempDir()
	src, bin := filepath.Join(dir, "sem.c"), filepath.Join(dir, "sem")
	semC, err := os.ReadFile("testdata/semc.c")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(src, semC, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(cc, "-O1", "-pthread", "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("cc: %v\n%s", err, out)
	}
	return bin
}

func runC(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		t.Fatalf("%s %q: %v", bin, args, err)
	}
	return strings.TrimSpace(string(out))
}

// Our image is glibc's sem_init(pshared=1), which writes the first 12 bytes (data and private)
// and leaves the padding, zero in ours, alone.
func TestSemaphoreGlibcImage(t *testing.T) {
	got := runC(t, buildSemC(t), "image", "5")
	if want := hex.EncodeToString(semImage(5)[:12]) + strings.Repeat("ff", SemSize-12); got != want {
		t.Fatalf("glibc image %s, want %s", got, want)
	}
}

func TestSemaphoreGlibcInterop(t *testing.T) {
	bin := buildSemC(t)
	s := newStore(t)
	for _, n := range []string{"ping", "pong", "count"} {
		sem, err := s.CreateSemaphore(n, 0o600, 0, true)
		if err != nil {
			t.Fatal(err)
		}
		defer s.UnlinkSemaphore(n)
		defer sem.Close()
	}
	path := func(n string) string { return filepath.Join(s.Dir(), SemPrefix+n) }
	ping, _ := s.OpenSemaphore("ping")
	defer ping.Close()
	pong, _ := s.OpenSemaphore("pong")
	defer pong.Close()

	// Both sides block in turn: C in sem_wait woken by our FUTEX_WAKE, we
	// in our FUTEX_WAIT woken by glibc's sem_post.
	const rounds = 2000
	cmd := exec.Command(bin, "pingpong", path("ping"), path("pong"), "2000")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := range rounds {
		if err := ping.Post(); err != nil {
			t.Fatal(err)
		}
		if err := pong.TimedWait(10 * time.Second); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("round %d: %v", i, err)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}

	// glibc posts while we wait.
	count, _ := s.OpenSemaphore("count")
	defer count.Close()
	cmd = exec.Command(bin, "post", path("count"), "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for range 300 {
		if err := count.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	// Our posts are glibc's value; no waiter is left registered.
	for range 3 {
		count.Post()
	}
	if v := runC(t, bin, "value", path("count")); v != "3" {
		t.Fatalf("sem_getvalue = %s, want 3", v)
	}
	if d := *(*uint64)(unsafePointer(count.mem)); d != 3 {
		t.Fatalf("data word %#x, want 3", d)
	}
}
