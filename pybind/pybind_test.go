package pybind

import (
	"testing"

	"github.com/shm-redirect/shm-redirect/core/jsonapi"
)

// The extension's one function is the call surface itself.
func TestCallIsJSONAPICall(t *testing.T) {
	dir := t.TempDir()
	for _, c := range [][2]string{{"ListJSON", `["", "", "` + dir + `"]`}, {"Nope", "[]"}, {"IsNative", `[1]`}} {
		if got, want := Call(c[0], c[1]), jsonapi.Call(c[0], c[1]); got != want {
			t.Errorf("Call(%q, %q) = %s, want %s", c[0], c[1], got, want)
		}
	}
}
