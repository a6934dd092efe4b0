// Command genheader writes shim/store_format.h from core.Format.
package main

import (
	"flag"
	"log"
	"os"

	"github.com/shm-redirect/shm-redirect/core"
)

func main() {
	out := flag.String("o", "", "output file")
	flag.Parse()
	if *out == "" {
		log.Fatal("genheader: -o is required")
	}
	if err := os.WriteFile(*out, core.RenderHeader(), 0o644); err != nil {
		log.Fatal(err)
	}
}
