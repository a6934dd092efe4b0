// Package interop proves that the C preload, CPython and the Go core share one store: objects
// made by one are used by the others, in real processes.
package interop

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shm-redirect/shm-redirect/core"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// tools builds the preload and a small C client once per test binary, with the project's Makefile.
func tools(t *testing.T) (lib, client string) {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "shmr-interop-build-")
		if buildErr != nil {
			return
		}
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		out, err := exec.Command("make", "-s", "-C", root, "BUILD="+buildDir, buildDir+"/libshm_redirect.so").CombinedOutput()
		if err != nil {
			buildErr = &buildError{"make", out, err}
			return
		}
		out, err = exec.Command("cc", "-std=gnu11", "-Wall", "-Werror", "-o", filepath.Join(buildDir, "semclient"),
			filepath.Join(root, "tests", "interop", "testdata", "semclient.c"), "-lpthread").CombinedOutput()
		if err != nil {
			buildErr = &buildError{"cc", out, err}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "libshm_redirect.so"), filepath.Join(buildDir, "semclient")
}

type buildError struct {
	what string
	out  []byte
	err  error
}

func (e *buildError) Error() string { return e.what + ": " + e.err.Error() + "\n" + string(e.out) }

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

func python() string {
	if p := os.Getenv("SHMR_PYTHON"); p != "" {
		return p
	}
	return "/usr/bin/python3"
}

// store gives each test a fresh store directory that the shim also uses (SHM_REDIRECT_DIR).
func store(t *testing.T) (*core.Store, []string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "shm")
	s, err := core.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	lib, _ := tools(t)
	env := append(os.Environ(), "SHM_REDIRECT_DIR="+dir, "LD_PRELOAD="+lib)
	t.Cleanup(func() {
		objs, err := s.List()
		if err != nil {
			t.Error(err)
		}
		for _, o := range objs {
			t.Errorf("store not empty after the test: %s %q", o.Kind, o.Name)
		}
		s.Close()
	})
	return s, env
}

func start(t *testing.T, env []string, argv ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &out
}

func run(t *testing.T, env []string, argv ...string) string {
	t.Helper()
	cmd, out := start(t, env, argv...)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%v: %v\n%s", argv, err, out)
	}
	return out.String()
}

// waitPython blocks in CPython's SemLock (sem_open by name through the preload, then sem_wait).
const waitPython = `
import sys, _multiprocessing as m
s = m.SemLock._rebuild(0, 1, 1, sys.argv[1])
if not s.acquire(timeout=20): sys.exit("timed out")
print("acquired")
`

func TestGoSemaphoreWaitedByPythonPostedByC(t *testing.T) {
	s, env := store(t)
	_, client := tools(t)
	sem, err := s.CreateSemaphore("go-made", 0o600, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	defer sem.Close()
	defer s.UnlinkSemaphore("go-made")
	waiter, out := start(t, env, python(), "-c", waitPython, "/go-made")
	time.Sleep(200 * time.Millisecond) // let it block: the post must wake a sleeper, not pre-fill
	run(t, env, client, "post", "/go-made")
	if err := waiter.Wait(); err != nil || !strings.Contains(out.String(), "acquired") {
		t.Fatalf("python waiter: %v\n%s", err, out)
	}
	if v, err := sem.Value(); err != nil || v != 0 {
		t.Fatalf("value after post+wait = %d, %v; want 0", v, err)
	}
}

func TestCSemaphoreWaitedByGoPostedByPython(t *testing.T) {
	s, env := store(t)
	_, client := tools(t)
	run(t, env, client, "create", "/c-made", "0")
	defer s.UnlinkSemaphore("c-made")
	sem, err := s.OpenSemaphore("c-made")
	if err != nil {
		t.Fatal(err)
	}
	defer sem.Close()
	done := make(chan error, 1)
	go func() { done <- sem.TimedWait(20 * time.Second) }()
	time.Sleep(200 * time.Millisecond)
	run(t, env, python(), "-c", `import sys, _multiprocessing as m; m.SemLock._rebuild(0, 1, 1, sys.argv[1]).release()`, "/c-made")
	if err := <-done; err != nil {
		t.Fatalf("go waiter: %v", err)
	}
}

func TestPythonSegmentReadByGo(t *testing.T) {
	s, env := store(t)
	run(t, env, python(), "-c", `
from multiprocessing import shared_memory, resource_tracker
m = shared_memory.SharedMemory(name="py-seg", create=True, size=8192)
m.buf[:12] = b"from python!"
resource_tracker.unregister(m._name, "shared_memory")  # leave it for Go
m.close()
`)
	seg, err := s.OpenSegment("/py-seg")
	if err != nil {
		t.Fatal(err)
	}
	if got := string(seg.Bytes()[:12]); got != "from python!" || seg.Size() != 8192 {
		t.Fatalf("segment = %q, %d bytes", got, seg.Size())
	}
	seg.Close()
	if err := s.UnlinkSegment("py-seg"); err != nil {
		t.Fatal(err)
	}
}

func TestGoListsAndSweepsWhatTheShimMade(t *testing.T) {
	s, env := store(t)
	_, client := tools(t)
	// The client creates a semaphore and a segment, keeps both mapped, and waits for stdin to close.
	cmd := exec.Command(client, "hold", "/held-sem", "/held-seg")
	cmd.Env = env
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make([]byte, 6)
	if _, err := stdout.Read(ready); err != nil || string(ready) != "ready\n" {
		t.Fatalf("client: %q %v", ready, err)
	}
	objs, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]core.Object{}
	for _, o := range objs {
		kinds[o.Name] = o
	}
	if o, ok := kinds["held-sem"]; !ok || o.Kind != core.KindSemaphore || o.Value != 3 || !contains(o.Holders, cmd.Process.Pid) {
		t.Fatalf("semaphore listing: %+v (all: %+v)", o, objs)
	}
	if o, ok := kinds["held-seg"]; !ok || o.Kind != core.KindSegment || o.Size != 4096 || !contains(o.Holders, cmd.Process.Pid) {
		t.Fatalf("segment listing: %+v (all: %+v)", o, objs)
	}
	if gone, err := s.Sweep(core.SweepOptions{}); err != nil || len(gone) != 0 {
		t.Fatalf("sweep removed held objects: %v %v", gone, err)
	}
	stdin.Close() // the client exits without unlinking: both objects leak
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	gone, err := s.Sweep(core.SweepOptions{})
	if err != nil || len(gone) != 2 {
		t.Fatalf("sweep after the holder died: %v %v", gone, err)
	}
}

func contains(xs []int, x int) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// The preload and the Go core resolve the same directory by themselves (no SHM_REDIRECT_DIR):
// /dev/shm natively, /tmp/shm in the no-/dev/shm sandbox (`make test` runs this in both).
func TestDefaultDirectoryAgrees(t *testing.T) {
	lib, client := tools(t)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, core.EnvDir+"=") {
			env = append(env, kv)
		}
	}
	t.Setenv(core.EnvDir, "") // for ResolveDir in this process
	env = append(env, "LD_PRELOAD="+lib, "SHM_REDIRECT_DEBUG=1")
	// "post" of a missing semaphore fails (ENOENT) after the preload has decided and logged.
	cmd := exec.Command(client, "post", "/shmr-no-such-semaphore")
	cmd.Env = env
	out, _ := cmd.CombinedOutput()
	dir, native, err := core.ResolveDir()
	if err != nil {
		t.Fatal(err)
	}
	mode := "store"
	if native {
		mode = "native"
	}
	want := mode + " " + dir
	if !strings.Contains(string(out), want) {
		t.Fatalf("preload says %q; Go core says %q", out, want)
	}
	t.Logf("both resolve: %s", want)
}
