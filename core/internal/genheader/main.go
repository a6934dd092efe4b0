// Command genheader writes core.Format for the other languages: the C header
// shim/store_format.h (-o) and the Python module pybind/shm_redirect/store/format.py (-py).
package main

import (
	"flag"
	"log"
	"os"

	"github.com/shm-redirect/shm-redirect/core"
)

func main() {
	out := flag.String("o", "", "the C header to write")
	py := flag.String("py", "", "the Python module to write")
	flag.Parse()
	if *out == "" || *py == "" {
		log.Fatal("genheader: -o and -py are required")
	}
	if err := os.WriteFile(*out, core.RenderHeader(), 0o644); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*py, core.RenderPython(), 0o644); err != nil {
		log.Fatal(err)
	}
}
