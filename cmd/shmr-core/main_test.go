package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/shm-redirect/shm-redirect/core/jsonapi"
)

func TestUsage(t *testing.T) {
	for _, argv := range [][]string{nil, {"ListJSON"}, {"Nope", "[]"}, {"ListJSON", "[]", "x"}} {
		var out, errOut bytes.Buffer
		if code := run(argv, &out, &errOut); code != 2 || out.Len() != 0 || !strings.Contains(errOut.String(), "usage: shmr-core") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", argv, code, out.String(), errOut.String())
		}
	}
}

// The executable prints jsonapi.Call's reply, one line, for results and errors alike.
func TestPrintsTheCallReply(t *testing.T) {
	dir := t.TempDir()
	for _, argv := range [][]string{
		{"ListJSON", `["", "", "` + dir + `"]`},
		{"ResolveDir", `["rel", ""]`},
		{"IsNative", `["", 1]`},
	} {
		var out, errOut bytes.Buffer
		if code := run(argv, &out, &errOut); code != 0 || errOut.Len() != 0 {
			t.Fatalf("%q: exit %d, stderr %q", argv, code, errOut.String())
		}
		if want := jsonapi.Call(argv[0], argv[1]) + "\n"; out.String() != want {
			t.Errorf("%q: printed %q, want %q", argv, out.String(), want)
		}
	}
}
