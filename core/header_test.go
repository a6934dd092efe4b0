package core

import (
	"bytes"
	"os"
	"testing"
)

// The shim compiles against shim/store_format.h; it must match Format.
func TestHeaderIsFresh(t *testing.T) {
	have, err := os.ReadFile("../shim/store_format.h")
	if err != nil {
		t.Fatal(err)
	}
	if want := RenderHeader(); !bytes.Equal(have, want) {
		t.Fatalf("shim/store_format.h is stale: run `go generate ./core`\nwant:\n%s", want)
	}
}
