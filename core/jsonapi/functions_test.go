package jsonapi

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/shm-redirect/shm-redirect/core"
)

func decodeObjects(t *testing.T, js string) []object {
	t.Helper()
	var objs []object
	if err := json.Unmarshal([]byte(js), &objs); err != nil {
		t.Fatalf("bad JSON %q: %v", js, err)
	}
	return objs
}

func TestResolveDirTakesTheCallersEnvironment(t *testing.T) {
	// ResolveDir/IsNative set the process environment to the caller's: restore it after
	// this test, or later tests make their temporary directories under /var/tmp.
	t.Setenv(core.EnvDir, os.Getenv(core.EnvDir))
	t.Setenv("TMPDIR", os.Getenv("TMPDIR"))
	dir := t.TempDir()
	if d, err := ResolveDir(dir, ""); err != nil || d != dir {
		t.Fatalf("ResolveDir(%q) = %q, %v", dir, d, err)
	}
	if IsNative(dir, "") {
		t.Fatal("SHM_REDIRECT_DIR must never be native")
	}
	if _, err := ResolveDir("relative", ""); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("relative SHM_REDIRECT_DIR: err = %v, want EINVAL", err)
	}
	d, err := ResolveDir("", "/var/tmp")
	if err != nil {
		t.Fatal(err)
	}
	if IsNative("", "/var/tmp") {
		if d != core.NativeDir {
			t.Fatalf("native, but dir %q", d)
		}
	} else if d != "/var/tmp/shm" {
		t.Fatalf("TMPDIR=/var/tmp: dir %q, want /var/tmp/shm", d)
	}
	// The environment of the process is left as the caller said.
	if os.Getenv(core.EnvDir) != "" || os.Getenv("TMPDIR") != "/var/tmp" {
		t.Fatalf("env: %q %q", os.Getenv(core.EnvDir), os.Getenv("TMPDIR"))
	}
}

func TestListJSONMissingStoreIsEmptyAndNotCreated(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	for _, call := range []func() (string, error){
		func() (string, error) { return ListJSON("", "", dir) },
		func() (string, error) { return ListJSON(dir, "", "") },
		func() (string, error) { return SweepJSON("", "", dir, 0, false) },
	} {
		js, err := call()
		if err != nil || js != "[]" {
			t.Fatalf("got %q, %v; want []", js, err)
		}
	}
	if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("listing created the store: %v", err)
	}
	if _, err := ListJSON("", "", "rel/dir"); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("relative dir: %v, want EINVAL", err)
	}
}

func TestListAndSweep(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	s, err := core.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	held, err := s.CreateSemaphore("held", 0o600, 3, true)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	gone, err := s.CreateSegment("gone", 4096, 0o640, true)
	if err != nil {
		t.Fatal(err)
	}
	gone.Close()

	objs := decodeObjects(t, must(ListJSON("", "", dir)))
	if len(objs) != 2 {
		t.Fatalf("objects: %+v", objs)
	}
	seg, sem := objs[0], objs[1] // sorted by file: "gone" < "sem.held"
	if seg.Kind != "segment" || seg.Name != "gone" || seg.Size != 4096 || seg.Value != -1 ||
		seg.Mode&0o777 != 0o640&^uint32(umask()) || seg.Type != "file" || len(seg.Holders) != 0 {
		t.Errorf("segment: %+v", seg)
	}
	if sem.Kind != "semaphore" || sem.Name != "held" || sem.File != "sem.held" || sem.Size != core.SemSize ||
		sem.Value != 3 || sem.UID != os.Geteuid() || sem.ModTime <= 0 {
		t.Errorf("semaphore: %+v", sem)
	}
	if len(sem.Holders) != 1 || sem.Holders[0] != os.Getpid() {
		t.Errorf("holders %v, want [%d]", sem.Holders, os.Getpid())
	}
	// holders is [] in JSON, never null
	if js := must(ListJSON("", "", dir)); !json.Valid([]byte(js)) || !strings.Contains(js, `"holders":[]`) {
		t.Errorf("JSON %s", js)
	}

	// The default grace: both are young, nothing goes.
	if got := decodeObjects(t, must(SweepJSON("", "", dir, core.SweepGraceDefault, false))); len(got) != 0 {
		t.Fatalf("swept young objects: %+v", got)
	}
	// No grace, dry run: only the unheld segment would go; nothing does.
	if got := decodeObjects(t, must(SweepJSON("", "", dir, 0, true))); len(got) != 1 || got[0].Name != "gone" {
		t.Fatalf("dry run: %+v", got)
	}
	if got := decodeObjects(t, must(SweepJSON(dir, "", "", 0, false))); len(got) != 1 || got[0].Name != "gone" {
		t.Fatalf("sweep: %+v", got)
	}
	if left := decodeObjects(t, must(ListJSON("", "", dir))); len(left) != 1 || left[0].Name != "held" {
		t.Fatalf("left: %+v", left)
	}
	if _, err := SweepJSON("", "", dir, 0, false); err != nil {
		t.Fatal(err)
	}
}

func TestSweepRefusesNativeAndBadGrace(t *testing.T) {
	if IsNative("", "") {
		if _, err := SweepJSON("", "", "", 0, true); !errors.Is(err, core.ErrNotManaged) {
			t.Fatalf("native sweep: %v", err)
		}
	}
	for _, bad := range []float64{math.NaN(), math.Inf(1), -1} {
		if _, err := SweepJSON("", "", t.TempDir(), bad, false); err == nil {
			t.Fatalf("grace %v accepted", bad)
		}
	}
}

func must(s string, err error) string {
	if err != nil {
		panic(err)
	}
	return s
}

func umask() int {
	m := syscall.Umask(0)
	syscall.Umask(m)
	return m
}
