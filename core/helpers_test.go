package core

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// needsRoot skips t unless it runs as root: its fixtures give files to another uid, which only
// root can. tests/go_tests.sh runs the tests it skipped again, as root, in the same sandbox.
func needsRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: its fixtures give files to another uid")
	}
}

// newStore opens a fresh store in a temporary directory and checks, when
// the test ends, that the test left it empty.
func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "shm"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		objs, err := s.entries()
		if err != nil {
			t.Error(err)
		}
		for _, o := range objs {
			t.Errorf("test left %s in the store", o.File)
		}
		s.Close()
	})
	return s
}

// wantErrno fails unless err wraps errno in an *os.PathError with op.
func wantErrno(t *testing.T, err error, op string, errno syscall.Errno) {
	t.Helper()
	var pe *os.PathError
	if !errors.As(err, &pe) {
		t.Fatalf("got %v (%T), want *os.PathError %s: %v", err, err, op, errno)
	}
	if pe.Op != op || !errors.Is(err, errno) {
		t.Fatalf("got %v, want %s: %v", err, op, errno)
	}
}

// The test binary doubles as the child process of the cross-process tests:
// with childEnv set, TestMain runs the named role instead of the tests.
const childEnv = "SHMR_TEST_CHILD"

func TestMain(m *testing.M) {
	if role := os.Getenv(childEnv); role != "" {
		os.Exit(runChild(role, os.Getenv("SHMR_TEST_DIR"), os.Args[len(os.Args)-1]))
	}
	os.Exit(m.Run())
}

// child starts this test binary as a child in role on store dir with arg.
// Its stdout is returned as a line reader; closing stdin tells it to exit.
type child struct {
	cmd   *exec.Cmd
	out   *bufio.Reader
	stdin io.WriteCloser
}

func startChild(t *testing.T, role, dir, arg string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$", "--", arg)
	// A race-enabled child would otherwise sleep a second at exit.
	cmd.Env = append(os.Environ(), childEnv+"="+role, "SHMR_TEST_DIR="+dir, "GORACE=atexit_sleep_ms=0")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, out: bufio.NewReader(stdout), stdin: stdin}
	t.Cleanup(func() { c.stdin.Close(); c.cmd.Process.Kill(); c.cmd.Wait() })
	return c
}

// line reads the child's next output line.
func (c *child) line(t *testing.T) string {
	t.Helper()
	l, err := c.out.ReadString('\n')
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	return strings.TrimSpace(l)
}

// wait closes the child's stdin and waits for a clean exit.
func (c *child) wait(t *testing.T) {
	t.Helper()
	c.stdin.Close()
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
}
