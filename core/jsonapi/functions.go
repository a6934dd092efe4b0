// Package jsonapi is the Go core's call surface for other languages: a few
// functions taking and returning strings, bools and numbers, structured
// results as JSON text, and one dispatcher, Call, that runs any of them from
// its name and a JSON array of arguments and answers one JSON reply. The gopy
// extension (package pybind, one function) and the static executable
// cmd/shmr-core both serve exactly this table, so the Python package has one
// protocol whichever it loads (pybind/shm_redirect/store/gocore.py).
//
// Environment: in a shared library the Go runtime reads the environment once,
// when the library is loaded, so later changes of os.environ in Python are
// invisible to os.Getenv here. The functions therefore take the values of
// SHM_REDIRECT_DIR and TMPDIR from the caller (empty means unset).
package jsonapi

import (
	"encoding/json"
	"errors"
	"io/fs"
	"math"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/shm-redirect/shm-redirect/core"
)

// envMu serialises the calls that set Go's view of the environment and then
// resolve the directory from it.
var envMu sync.Mutex

// setenv makes Go's environment agree with the caller's for the variables
// that choose the store directory.
func setenv(envDir, tmpDir string) {
	for k, v := range map[string]string{core.EnvDir: envDir, "TMPDIR": tmpDir} {
		if os.Getenv(k) == v {
			continue
		}
		if v == "" {
			os.Unsetenv(k)
		} else {
			os.Setenv(k, v)
		}
	}
}

func resolve(envDir, tmpDir string) (string, bool, error) {
	envMu.Lock()
	defer envMu.Unlock()
	setenv(envDir, tmpDir)
	return core.ResolveDir()
}

// ResolveDir returns the directory the preload would use with
// SHM_REDIRECT_DIR=envDir and TMPDIR=tmpDir (empty: unset), as in
// core/STORE.md "Which directory".
func ResolveDir(envDir, tmpDir string) (string, error) {
	dir, _, err := resolve(envDir, tmpDir)
	return dir, err
}

// IsNative reports whether, with these variables, the preload would forward
// to glibc's /dev/shm rather than use a store.
func IsNative(envDir, tmpDir string) bool {
	_, native, err := resolve(envDir, tmpDir)
	return err == nil && native
}

// object is the JSON form of a core.Object.
type object struct {
	Kind    string  `json:"kind"`
	Name    string  `json:"name"`
	File    string  `json:"file"`
	Size    int64   `json:"size"`
	UID     int     `json:"uid"`
	Mode    uint32  `json:"mode"`    // permission bits (and setuid/setgid/sticky as in st_mode)
	Type    string  `json:"type"`    // "file", or what else the entry is (fifo, symlink, ...)
	ModTime float64 `json:"mtime"`   // seconds since the epoch
	Value   int     `json:"value"`   // a semaphore's value; -1 for a segment or an invalid semaphore
	Holders []int   `json:"holders"` // pids of live processes with it open or mapped
}

func toJSON(objs []core.Object) (string, error) {
	out := make([]object, 0, len(objs))
	for _, o := range objs {
		holders := o.Holders
		if holders == nil {
			holders = []int{}
		}
		out = append(out, object{
			Kind:    o.Kind.String(),
			Name:    o.Name,
			File:    o.File,
			Size:    o.Size,
			UID:     o.UID,
			Mode:    modeBits(o.Mode),
			Type:    typeName(o.Mode),
			ModTime: float64(o.ModTime.UnixNano()) / 1e9,
			Value:   o.Value,
			Holders: holders,
		})
	}
	b, err := json.Marshal(out)
	return string(b), err
}

func modeBits(m fs.FileMode) uint32 {
	b := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		b |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		b |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		b |= 0o1000
	}
	return b
}

func typeName(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "file"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m&fs.ModeNamedPipe != 0:
		return "fifo"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "other"
}

// open opens the store: dir when given (absolute, else EINVAL; always a
// store, as with SHM_REDIRECT_DIR), else the directory the preload would resolve. It never
// creates a directory: ok is false when the store does not exist yet.
func open(envDir, tmpDir, dir string) (s *core.Store, ok bool, err error) {
	if dir != "" && dir[0] != '/' {
		return nil, false, &fs.PathError{Op: "open", Path: dir, Err: syscall.EINVAL}
	}
	if dir == "" {
		var native bool
		dir, native, err = resolve(envDir, tmpDir)
		if err != nil {
			return nil, false, err
		}
		if native {
			envMu.Lock()
			defer envMu.Unlock()
			setenv(envDir, tmpDir)
			s, err = core.OpenDefault()
			return s, err == nil, err
		}
	}
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	s, err = core.Open(dir)
	return s, err == nil, err
}

// ListJSON lists the objects of the store (dir, or the resolved directory
// when dir is empty) as a JSON array of objects with the fields kind, name,
// file, size, uid, mode, type, mtime, value and holders. A store that does
// not exist yet is empty.
func ListJSON(envDir, tmpDir, dir string) (string, error) {
	s, ok, err := open(envDir, tmpDir, dir)
	if err != nil || !ok {
		return "[]", err
	}
	defer s.Close()
	objs, err := s.List()
	if err != nil {
		return "", err
	}
	return toJSON(objs)
}

// verdict is VerdictJSON's answer: what a first store call would meet.
type verdict struct {
	Dir         string `json:"dir"`          // "" when the path itself is bad
	Native      bool   `json:"native"`       // the native /dev/shm (glibc's)
	NativeErrno int    `json:"native_errno"` // why /dev/shm is not used natively (0: it is)
	Errno       int    `json:"errno"`        // opening (creating) the directory: 0, or why not
}

// VerdictJSON answers, as JSON, where the first store call of a process with
// SHM_REDIRECT_DIR=envDir and TMPDIR=tmpDir would put its objects and what it
// would meet there: the directory, whether it is the native /dev/shm, the
// errno of core.NativeStatus, and 0 or the errno of opening the directory as
// the first call does (creating a missing store). The C library answers the
// same question (shim/shm_redirect.h); tests/agreement compares the two.
func VerdictJSON(envDir, tmpDir string) (string, error) {
	envMu.Lock()
	defer envMu.Unlock()
	setenv(envDir, tmpDir)
	var v verdict
	v.NativeErrno = errnoOf(core.NativeStatus())
	dir, native, err := core.ResolveDir()
	if err == nil {
		v.Dir, v.Native = dir, native
		var s *core.Store
		if s, err = core.OpenDefault(); err == nil {
			s.Close()
		}
	}
	v.Errno = errnoOf(err)
	b, err := json.Marshal(v)
	return string(b), err
}

// errnoOf is 0 for nil, else the errno that err wraps (EIO if none).
func errnoOf(err error) int {
	if err == nil {
		return 0
	}
	var e syscall.Errno
	if errors.As(err, &e) {
		return int(e)
	}
	return int(syscall.EIO)
}

// ColdStartSweepJSON is the sweep of a Lambda cold start (the exec wrapper,
// or the first activated interpreter of a tree): the resolved store, no grace
// period, for real. At a cold start nothing of the function runs yet, so an
// object that no live process holds is what a killed invocation left.
func ColdStartSweepJSON(envDir, tmpDir string) (string, error) {
	return SweepJSON(envDir, tmpDir, "", 0, false)
}

// SweepJSON removes the leaked objects of the store (see core.Store.Sweep)
// and returns them as ListJSON does (holders empty, value -1). graceSeconds
// spares objects changed less than that long ago, as SweepOptions.Grace: 0
// spares none, a negative or non-finite value is an error. With dryRun
// nothing is removed. The native /dev/shm is never swept (an error wrapping
// core.ErrNotManaged).
func SweepJSON(envDir, tmpDir, dir string, graceSeconds float64, dryRun bool) (string, error) {
	if math.IsNaN(graceSeconds) || math.IsInf(graceSeconds, 0) || graceSeconds < 0 {
		return "", errors.New("sweep: grace must be a finite number of seconds >= 0")
	}
	s, ok, err := open(envDir, tmpDir, dir)
	if err != nil || !ok {
		return "[]", err
	}
	defer s.Close()
	grace := time.Duration(graceSeconds * float64(time.Second))
	removed, err := s.Sweep(core.SweepOptions{Grace: grace, DryRun: dryRun})
	js, jerr := toJSON(removed)
	if err != nil {
		// Some objects may have been removed before the error: report both.
		return js, err
	}
	return js, jerr
}
