package core

import (
	"fmt"
	"io"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// runChild is the body of a child process; see TestMain. It prints "ok" (or
// "ready" for the holding roles) on stdout and returns the exit status.
func runChild(role, dir, arg string) int {
	fail := func(err error) int { fmt.Fprintf(os.Stderr, "child %s: %v\n", role, err); return 1 }
	s, err := Open(dir)
	if err != nil {
		return fail(err)
	}
	defer s.Close()
	switch role {
	case "create": // race to create semaphore arg, print its inode
		sem, err := s.CreateSemaphore(arg, 0o600, 0, false)
		if err != nil {
			return fail(err)
		}
		sem.Close()
		var st unix.Stat_t
		if err := unix.Fstatat(s.fd, SemPrefix+arg, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fail(err)
		}
		fmt.Println(st.Ino)
	case "pingpong": // arg rounds of: wait on "ping", post "pong"
		n, _ := strconv.Atoi(arg)
		ping, err := s.OpenSemaphore("ping")
		if err != nil {
			return fail(err)
		}
		pong, err := s.OpenSemaphore("pong")
		if err != nil {
			return fail(err)
		}
		for range n {
			if err := ping.Wait(); err != nil {
				return fail(err)
			}
			if err := pong.Post(); err != nil {
				return fail(err)
			}
		}
		fmt.Println("ok")
	case "map": // map segment arg, close the fd, hold the mapping until stdin closes
		fd, err := unix.Openat(s.fd, arg, unix.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fail(err)
		}
		mem, err := unix.Mmap(fd, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		unix.Close(fd)
		if err != nil {
			return fail(err)
		}
		fmt.Println("ready")
		io.Copy(io.Discard, os.Stdin)
		unix.Munmap(mem)
	case "open": // open semaphore arg, hold it until stdin closes
		sem, err := s.OpenSemaphore(arg)
		if err != nil {
			return fail(err)
		}
		fmt.Println("ready")
		io.Copy(io.Discard, os.Stdin)
		sem.Close()
	default:
		return fail(fmt.Errorf("unknown role"))
	}
	return 0
}
