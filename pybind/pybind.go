// Package pybind is what gopy binds into the Python extension shm_redirect._core:
// the Go core's call surface (package core/jsonapi) as one function, so that
// the extension and the static cmd/shmr-core speak the same table and the same
// JSON. The Python side is pybind/shm_redirect/store/gocore.py.
//
// The Go runtime of the extension does not survive fork() without exec, so
// Python loads it lazily and only for inspection and cleanup, never in a
// process forked after loading it.
package pybind

import "github.com/shm-redirect/shm-redirect/core/jsonapi"

// Call runs the Go core function fn with the JSON array jsonArgs and returns
// its JSON reply (see jsonapi.Call).
func Call(fn, jsonArgs string) string {
	return jsonapi.Call(fn, jsonArgs)
}
