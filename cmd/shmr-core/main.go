// Command shmr-core is the Go core of shm-redirect as a static executable, for
// the Python package where its gopy extension (shm_redirect._core) is missing
// or cannot load: another CPython version, arm64, or a glibc older than the
// extension needs (Amazon Linux 2). Built with CGO_ENABLED=0 it runs on any
// Linux of its architecture, and being exec'd it is safe to use from a
// process forked after anything (a fresh Go runtime every call).
//
//	shmr-core FN JSON-ARGS
//
// FN is one of the functions of the Go core's call surface (package
// core/jsonapi: ResolveDir, IsNative, VerdictJSON, ListJSON, SweepJSON),
// JSON-ARGS a JSON array of its arguments. It prints the one JSON line that
// jsonapi.Call answers, as the gopy extension does in process: {"result":
// ...} or {"error": message, "type": "GoCoreError"|"ValueError"}. Exit
// status 0 when a reply was printed, 2 for a usage error.
package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/shm-redirect/shm-redirect/core/jsonapi"
)

func run(argv []string, stdout, stderr io.Writer) int {
	if len(argv) != 2 || !slices.Contains(jsonapi.Names(), argv[0]) {
		fmt.Fprintf(stderr, "usage: shmr-core {%s} JSON-ARGS\n", strings.Join(jsonapi.Names(), ","))
		return 2
	}
	if _, err := fmt.Fprintln(stdout, jsonapi.Call(argv[0], argv[1])); err != nil {
		return 1
	}
	return 0
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
