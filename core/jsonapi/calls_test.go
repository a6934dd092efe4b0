package jsonapi

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
)

// callJSON runs Call and decodes its reply.
func callJSON(t *testing.T, fn, args string) map[string]any {
	t.Helper()
	out := Call(fn, args)
	var r map[string]any
	if err := json.Unmarshal([]byte(out), &r); err != nil || strings.Contains(out, "\n") {
		t.Fatalf("%s %s: %v in %q", fn, args, err, out)
	}
	return r
}

func TestCallServesEveryFunction(t *testing.T) {
	store := t.TempDir()
	if err := os.WriteFile(filepath.Join(store, "seg"), []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	want, err := ListJSON("", "", store)
	if err != nil {
		t.Fatal(err)
	}
	args, _ := json.Marshal([]string{"", "", store})
	if r := callJSON(t, "ListJSON", string(args)); r["result"] != want || len(r) != 1 {
		t.Errorf("ListJSON: got %v, want result %s", r, want)
	}
	if r := callJSON(t, "ResolveDir", `["`+store+`", "/x"]`); r["result"] != store {
		t.Errorf("ResolveDir: %v", r)
	}
	if r := callJSON(t, "IsNative", `["`+store+`", ""]`); r["result"] != false {
		t.Errorf("IsNative: %v", r)
	}
	var v verdict
	if r := callJSON(t, "VerdictJSON", `["`+store+`", ""]`); json.Unmarshal([]byte(r["result"].(string)), &v) != nil ||
		v != (verdict{Dir: store, NativeErrno: v.NativeErrno}) {
		t.Errorf("VerdictJSON: %v", r)
	}
	args, _ = json.Marshal([]any{"", "", store, 0, true})
	r := callJSON(t, "SweepJSON", string(args))
	var swept []map[string]any
	if s, ok := r["result"].(string); !ok || json.Unmarshal([]byte(s), &swept) != nil || len(swept) != 1 || swept[0]["name"] != "seg" {
		t.Errorf("SweepJSON dry run: %v", r)
	}
	if _, err := os.Stat(filepath.Join(store, "seg")); err != nil {
		t.Errorf("dry run removed the segment: %v", err)
	}
	// The cold-start sweep: the resolved store, no grace, for real.
	r = callJSON(t, "ColdStartSweepJSON", `["`+store+`", ""]`)
	if s, ok := r["result"].(string); !ok || json.Unmarshal([]byte(s), &swept) != nil || len(swept) != 1 {
		t.Errorf("ColdStartSweepJSON: %v", r)
	}
	if _, err := os.Stat(filepath.Join(store, "seg")); !os.IsNotExist(err) {
		t.Errorf("the cold-start sweep left the segment: %v", err)
	}
	if len(Names()) != len(functions) || !sort.StringsAreSorted(Names()) {
		t.Errorf("Names() = %v", Names())
	}
}

func TestCallErrors(t *testing.T) {
	for _, c := range []struct{ fn, args, typ, msg string }{
		{"Nope", `[]`, "ValueError", "not a Go core function"},
		{"ResolveDir", `["rel", ""]`, "GoCoreError", "invalid argument"},
		{"SweepJSON", `["", "", "/nonexistent-dir", "nan", true]`, "GoCoreError", "finite"},
		{"SweepJSON", `["", "", "/tmp", "inf", false]`, "GoCoreError", "finite"},
		{"SweepJSON", `["", "", "/tmp", -1, true]`, "GoCoreError", ">= 0"},
		{"ListJSON", `["", ""]`, "ValueError", "3 arguments"},
		{"ListJSON", `{"a": 1}`, "ValueError", "JSON-ARGS"},
		{"IsNative", `["", 1]`, "ValueError", "argument 2"},
		{"SweepJSON", `["", "", "/tmp", 0, "yes"]`, "ValueError", "a boolean"},
	} {
		r := callJSON(t, c.fn, c.args)
		if r["type"] != c.typ || !strings.Contains(r["error"].(string), c.msg) || len(r) != 2 {
			t.Errorf("%s %s: got %v, want %s containing %q", c.fn, c.args, r, c.typ, c.msg)
		}
	}
}

// The verdict of a bad path: no directory, its errno.
func TestVerdictOfBadPaths(t *testing.T) {
	t.Setenv("SHM_REDIRECT_DIR", os.Getenv("SHM_REDIRECT_DIR"))
	t.Setenv("TMPDIR", os.Getenv("TMPDIR"))
	base := t.TempDir()
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(base, filepath.Join(base, "link")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		env  string
		dir  string
		want syscall.Errno
	}{
		{"rel", "", syscall.EINVAL},
		{file, file, syscall.ENOTDIR},
		{filepath.Join(base, "link"), filepath.Join(base, "link"), syscall.ELOOP},
		{filepath.Join(base, "no", "shm"), filepath.Join(base, "no", "shm"), syscall.ENOENT},
	} {
		js, err := VerdictJSON(c.env, "")
		var v verdict
		if err != nil || json.Unmarshal([]byte(js), &v) != nil || v.Dir != c.dir || v.Native || v.Errno != int(c.want) {
			t.Errorf("VerdictJSON(%q) = %s, %v; want dir %q errno %d", c.env, js, err, c.dir, c.want)
		}
	}
}
