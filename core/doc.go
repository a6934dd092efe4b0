// Package core is the store of named POSIX semaphores and shared-memory
// segments that shm-redirect puts where /dev/shm is missing or unusable.
// The C preload (shim/) implements the same format for sem_open and
// shm_open; this package gives Go programs the same objects, lists them and
// sweeps the leaked ones. STORE.md beside this file is the specification.
package core
