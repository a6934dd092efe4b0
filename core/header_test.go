package core

import (
	"bytes"
	"os"
	"slices"
	"testing"
)

// The shim compiles against shim/store_format.h and the Python package imports
// pybind/shm_redirect/store/format.py: both must be what Format renders.
func TestGeneratedFilesAreFresh(t *testing.T) {
	for path, render := range map[string]func() []byte{
		"../shim/store_format.h":                 RenderHeader,
		"../pybind/shm_redirect/store/format.py": RenderPython,
	} {
		have, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if want := render(); !bytes.Equal(have, want) {
			t.Errorf("%s is stale: run `go generate ./core`\nwant:\n%s", path, want)
		}
	}
}

// Every name Python is given exists in Format (a typo would silently drop it).
func TestPythonNamesAreFormatNames(t *testing.T) {
	for _, n := range PythonNames {
		if !slices.ContainsFunc(Format, func(c FormatConst) bool { return c.Name == n }) {
			t.Errorf("PythonNames: %s is not in Format", n)
		}
	}
}
