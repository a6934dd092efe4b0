//go:build tools

package pybind

// gopy's generated module (packaging/gopy_extension.py) imports gopyh; no file of ours does. This
// file, never built (tag "tools"), keeps it in the module's package graph, so `go mod vendor`
// copies it into the sdist's vendor/ and the extension builds offline.
import _ "github.com/go-python/gopy/gopyh"
