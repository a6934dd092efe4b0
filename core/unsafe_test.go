package core

import "unsafe"

// unsafePointer returns the address of a mapping's first byte.
func unsafePointer(mem []byte) unsafe.Pointer { return unsafe.Pointer(&mem[0]) }
