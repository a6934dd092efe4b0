// Command shmr-core is the Go core of shm-redirect as a static executable, for
// the Python package where its gopy extension (shm_redirect._core) is missing
// or cannot load: another CPython version, arm64, or a glibc older than the
// extension needs (Amazon Linux 2). Built with CGO_ENABLED=0 it runs on any
// Linux of its architecture, and being exec'd it is safe to use from a
// process forked after anything (a fresh Go runtime every call).
//
//	shmr-core FN JSON-ARGS
//
// FN is one of the functions of package pybind (ResolveDir, IsNative,
// ListJSON, SweepJSON), JSON-ARGS a JSON array of its arguments (a float may
// also be a string that strconv.ParseFloat reads, e.g. "nan": JSON has no
// NaN). It prints one JSON line, as `python -m shm_redirect._gocall` does:
// {"result": ...}, {"error": message, "type": "GoCoreError"} for an error
// returned by Go, or {"error": message, "type": "ValueError"} for arguments
// that do not fit. Exit status 0 when a reply was printed, 2 for a usage error.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/shm-redirect/shm-redirect/pybind"
)

// A function is one of package pybind's, with its argument types: s string, f float64, b bool.
type function struct {
	sig  string
	call func(a []any) (any, error)
}

var functions = map[string]function{
	"ResolveDir": {"ss", func(a []any) (any, error) {
		return pybind.ResolveDir(a[0].(string), a[1].(string))
	}},
	"IsNative": {"ss", func(a []any) (any, error) {
		return pybind.IsNative(a[0].(string), a[1].(string)), nil
	}},
	"ListJSON": {"sss", func(a []any) (any, error) {
		return pybind.ListJSON(a[0].(string), a[1].(string), a[2].(string))
	}},
	"SweepJSON": {"sssfb", func(a []any) (any, error) {
		return pybind.SweepJSON(a[0].(string), a[1].(string), a[2].(string), a[3].(float64), a[4].(bool))
	}},
}

// A reply is a result, or an error when Type (the Python exception to raise) is set.
type reply struct {
	Result any
	Error  string
	Type   string
}

// MarshalJSON writes either {"result": ...} or {"error": ..., "type": ...}.
func (r reply) MarshalJSON() ([]byte, error) {
	if r.Type != "" {
		return json.Marshal(map[string]string{"error": r.Error, "type": r.Type})
	}
	return json.Marshal(map[string]any{"result": r.Result})
}

// decode turns the JSON array of arguments into values of the types of sig.
func decode(sig, jsonArgs string) ([]any, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal([]byte(jsonArgs), &raw); err != nil {
		return nil, fmt.Errorf("JSON-ARGS: %v", err)
	}
	if len(raw) != len(sig) {
		return nil, fmt.Errorf("expected a JSON array of %d arguments", len(sig))
	}
	out := make([]any, len(sig))
	for i, r := range raw {
		var err error
		switch sig[i] {
		case 's':
			var s string
			err = json.Unmarshal(r, &s)
			out[i] = s
		case 'b':
			var b bool
			err = json.Unmarshal(r, &b)
			out[i] = b
		case 'f':
			var f float64
			var s string
			if err = json.Unmarshal(r, &f); err != nil && json.Unmarshal(r, &s) == nil {
				f, err = strconv.ParseFloat(s, 64)
			}
			out[i] = f
		}
		if err != nil {
			return nil, fmt.Errorf("argument %d: want %s, got %s", i+1,
				map[byte]string{'s': "a string", 'b': "a boolean", 'f': "a number"}[sig[i]], r)
		}
	}
	return out, nil
}

// call runs fn and returns its reply.
func call(fn function, jsonArgs string) reply {
	a, err := decode(fn.sig, jsonArgs)
	if err != nil {
		return reply{Error: err.Error(), Type: "ValueError"}
	}
	res, err := fn.call(a)
	if err != nil {
		return reply{Error: err.Error(), Type: "GoCoreError"}
	}
	return reply{Result: res}
}

func run(argv []string, stdout, stderr io.Writer) int {
	fn, ok := function{}, len(argv) == 2
	if ok {
		fn, ok = functions[argv[0]]
	}
	if !ok {
		names := make([]string, 0, len(functions))
		for n := range functions {
			names = append(names, n)
		}
		sort.Strings(names)
		fmt.Fprintf(stderr, "usage: shmr-core {%s} JSON-ARGS\n", strings.Join(names, ","))
		return 2
	}
	b, err := json.Marshal(call(fn, argv[1]))
	if err != nil { // cannot happen: results are strings and bools
		b, _ = json.Marshal(reply{Error: err.Error(), Type: "RuntimeError"})
	}
	if _, err := fmt.Fprintf(stdout, "%s\n", b); err != nil {
		return 1
	}
	return 0
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
