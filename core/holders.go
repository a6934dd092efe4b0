package core

import (
	"bytes"
	"os"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"
)

// FileID identifies a file by device and inode number, the only identity
// that survives renames and unlinks.
type FileID struct {
	Dev uint64
	Ino uint64
}

// fileID returns the identity of a stat result.
func fileID(st *unix.Stat_t) FileID { return FileID{Dev: uint64(st.Dev), Ino: st.Ino} }

// Holders returns, for each file of want that a live process has open or
// mapped, the pids of those processes in ascending order. It reads
// /proc/PID/fd and /proc/PID/maps of every process once. A path (readlink)
// would miss files that were unlinked or renamed, so open files are matched
// by a stat through the fd link, and mappings by the device and inode
// columns of maps. Processes we may not inspect are skipped, and so are
// those that exit during the scan. It fails only when /proc is unreadable:
// a caller that removes files must not take "no holders" for granted then.
func Holders(want map[FileID]bool) (map[FileID][]int, error) {
	held := make(map[FileID][]int)
	if len(want) == 0 {
		return held, nil
	}
	devs := make(map[uint64]bool)
	for id := range want {
		devs[id.Dev] = true
	}
	proc, err := os.Open("/proc")
	if err != nil {
		return nil, err
	}
	names, err := proc.Readdirnames(-1)
	proc.Close()
	if err != nil {
		return nil, err
	}
	add := func(id FileID, pid int) {
		if !want[id] {
			return
		}
		pids := held[id]
		// Processes are scanned one at a time, so a repeat is always last.
		if n := len(pids); n == 0 || pids[n-1] != pid {
			held[id] = append(pids, pid)
		}
	}
	var buf []byte
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid <= 0 {
			continue
		}
		scanFds(pid, devs, add)
		buf = scanMaps(pid, buf, devs, add)
	}
	for id := range held {
		slices.Sort(held[id])
	}
	return held, nil
}

// scanFds reports the files that process pid has open on a device of devs.
func scanFds(pid int, devs map[uint64]bool, add func(FileID, int)) {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd/"
	d, err := os.Open(dir)
	if err != nil {
		return // gone, or not ours to inspect
	}
	fds, _ := d.Readdirnames(-1)
	d.Close()
	var st unix.Stat_t
	for _, fd := range fds {
		// stat follows the fd's magic link to the open file itself, even
		// when that file no longer has a name.
		if unix.Stat(dir+fd, &st) != nil || !devs[uint64(st.Dev)] {
			continue
		}
		add(fileID(&st), pid)
	}
}

// scanMaps reports the files that process pid maps on a device of devs. buf
// is reused between calls to spare the allocations of hundreds of reads.
func scanMaps(pid int, buf []byte, devs map[uint64]bool, add func(FileID, int)) []byte {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/maps")
	if err != nil {
		return buf
	}
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, max(64<<10, cap(buf)))
		}
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil || n == 0 {
			break
		}
	}
	f.Close()
	for line := range bytes.Lines(buf) {
		if id, ok := parseMapsLine(line); ok && devs[id.Dev] {
			add(id, pid)
		}
	}
	return buf
}

// parseMapsLine returns the device and inode of one line of /proc/PID/maps:
// "start-end perms offset major:minor inode [path]", major and minor in hex.
// Anonymous mappings (inode 0) are not reported.
func parseMapsLine(line []byte) (FileID, bool) {
	var field [5][]byte
	for i := range field {
		line = bytes.TrimLeft(line, " ")
		end := bytes.IndexAny(line, " \n")
		if end < 0 {
			end = len(line)
		}
		field[i], line = line[:end], line[end:]
	}
	majS, minS, ok := bytes.Cut(field[3], []byte{':'})
	if !ok {
		return FileID{}, false
	}
	maj, err1 := strconv.ParseUint(string(majS), 16, 32)
	min, err2 := strconv.ParseUint(string(minS), 16, 32)
	ino, err3 := strconv.ParseUint(string(field[4]), 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || ino == 0 {
		return FileID{}, false
	}
	return FileID{Dev: unix.Mkdev(uint32(maj), uint32(min)), Ino: ino}, true
}
