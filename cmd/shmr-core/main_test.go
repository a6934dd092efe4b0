package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shm-redirect/shm-redirect/pybind"
)

// runJSON runs the command with argv and decodes its one line of reply.
func runJSON(t *testing.T, argv ...string) map[string]any {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := run(argv, &out, &errOut); code != 0 {
		t.Fatalf("%q: exit %d, stderr %q", argv, code, errOut.String())
	}
	if n := strings.Count(out.String(), "\n"); n != 1 || !strings.HasSuffix(out.String(), "\n") {
		t.Fatalf("%q: want one line, got %q", argv, out.String())
	}
	var r map[string]any
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("%q: %v in %q", argv, err, out.String())
	}
	return r
}

func TestUsage(t *testing.T) {
	for _, argv := range [][]string{nil, {"ListJSON"}, {"Nope", "[]"}, {"ListJSON", "[]", "x"}} {
		var out, errOut bytes.Buffer
		if code := run(argv, &out, &errOut); code != 2 || out.Len() != 0 || !strings.Contains(errOut.String(), "usage: shmr-core") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", argv, code, out.String(), errOut.String())
		}
	}
}

func TestSameAsPybind(t *testing.T) {
	store := t.TempDir()
	if err := os.WriteFile(filepath.Join(store, "seg"), []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	want, err := pybind.ListJSON("", "", store)
	if err != nil {
		t.Fatal(err)
	}
	args, _ := json.Marshal([]string{"", "", store})
	if r := runJSON(t, "ListJSON", string(args)); r["result"] != want || len(r) != 1 {
		t.Errorf("ListJSON: got %v, want result %s", r, want)
	}
	if r := runJSON(t, "ResolveDir", `["`+store+`", "/x"]`); r["result"] != store {
		t.Errorf("ResolveDir: %v", r)
	}
	if r := runJSON(t, "IsNative", `["`+store+`", ""]`); r["result"] != false {
		t.Errorf("IsNative: %v", r)
	}
	args, _ = json.Marshal([]any{"", "", store, 0, true})
	r := runJSON(t, "SweepJSON", string(args))
	var swept []map[string]any
	if s, ok := r["result"].(string); !ok || json.Unmarshal([]byte(s), &swept) != nil || len(swept) != 1 || swept[0]["name"] != "seg" {
		t.Errorf("SweepJSON dry run: %v", r)
	}
	if _, err := os.Stat(filepath.Join(store, "seg")); err != nil {
		t.Errorf("dry run removed the segment: %v", err)
	}
}

func TestErrors(t *testing.T) {
	for _, c := range []struct{ fn, args, typ, msg string }{
		{"ResolveDir", `["rel", ""]`, "GoCoreError", "invalid argument"},
		{"SweepJSON", `["", "", "/nonexistent-dir", "nan", true]`, "GoCoreError", "finite"},
		{"SweepJSON", `["", "", "/tmp", "inf", false]`, "GoCoreError", "finite"},
		{"ListJSON", `["", ""]`, "ValueError", "3 arguments"},
		{"ListJSON", `{"a": 1}`, "ValueError", "JSON-ARGS"},
		{"IsNative", `["", 1]`, "ValueError", "argument 2"},
		{"SweepJSON", `["", "", "/tmp", 0, "yes"]`, "ValueError", "a boolean"},
	} {
		r := runJSON(t, c.fn, c.args)
		if r["type"] != c.typ || !strings.Contains(r["error"].(string), c.msg) || len(r) != 2 {
			t.Errorf("%s %s: got %v, want %s containing %q", c.fn, c.args, r, c.typ, c.msg)
		}
	}
}
