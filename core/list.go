package core

import (
	"encoding/binary"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Kind tells a semaphore from a segment.
type Kind int

const (
	KindSemaphore Kind = iota + 1 // a file sem.NAME
	KindSegment                   // any other file
	KindJournal                   // a resource tracker's journal, JournalPrefix*
)

func (k Kind) String() string {
	switch k {
	case KindSemaphore:
		return "semaphore"
	case KindJournal:
		return "journal"
	case KindSegment:
		return "segment"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Object describes one file of a store.
type Object struct {
	Kind       Kind
	Name       string      // the object's name: File without the sem. prefix for a semaphore
	File       string      // the file's name in the store directory
	Size       int64       // bytes
	UID        int         // owner
	Mode       os.FileMode // type and permission bits
	ModTime    time.Time
	ChangeTime time.Time // inode change time (ctime)
	Value      int       // a semaphore's value; -1 for a segment or an invalid semaphore file
	Holders    []int     // pids of the live processes that have it open or mapped

	id FileID
}

// List reports every object of the store, sorted by file name, with the
// processes holding it. Directories are skipped; other non-regular files
// (a FIFO, a symlink someone planted) are listed as they are, so they can
// be seen, but never count as valid objects.
func (s *Store) List() ([]Object, error) {
	objs, err := s.entries()
	if err != nil {
		return nil, err
	}
	want := make(map[FileID]bool, len(objs))
	for _, o := range objs {
		want[o.id] = true
	}
	held, err := Holders(want)
	if err != nil {
		return nil, pathErr("list", s.dir, err)
	}
	for i := range objs {
		o := &objs[i]
		o.Holders = held[o.id]
		if o.Kind == KindSemaphore && o.Mode.IsRegular() {
			o.Value = semValue(s.fd, o.File)
		}
	}
	return objs, nil
}

// entries reads the directory and stats every entry without following
// symlinks. Value is left at -1 and Holders empty.
func (s *Store) entries() ([]Object, error) {
	dfd, err := s.dirfd()
	if err != nil {
		return nil, pathErr("list", s.dir, err)
	}
	// A fresh descriptor of the same directory: reading s.fd itself would
	// move its offset under concurrent List calls.
	fd, err := unix.Openat(dfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, pathErr("list", s.dir, err)
	}
	d := os.NewFile(uintptr(fd), s.dir)
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, pathErr("list", s.dir, err)
	}
	slices.Sort(names)
	objs := make([]Object, 0, len(names))
	for _, name := range names {
		var st unix.Stat_t
		if unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
			continue // removed since the directory was read
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			continue
		}
		objs = append(objs, objectOf(name, &st))
	}
	return objs, nil
}

// objectOf describes the file name with stat st.
func objectOf(name string, st *unix.Stat_t) Object {
	o := Object{
		Kind:       KindSegment,
		Name:       name,
		File:       name,
		Size:       st.Size,
		UID:        int(st.Uid),
		Mode:       fileMode(st.Mode),
		ModTime:    time.Unix(st.Mtim.Unix()),
		ChangeTime: time.Unix(st.Ctim.Unix()),
		Value:      -1,
		id:         fileID(st),
	}
	if n, ok := strings.CutPrefix(name, SemPrefix); ok {
		o.Kind, o.Name = KindSemaphore, n
	} else if strings.HasPrefix(name, JournalPrefix) {
		o.Kind = KindJournal
	}
	return o
}

// changed returns the newer of the modification and change times.
func (o *Object) changed() time.Time {
	if o.ChangeTime.After(o.ModTime) {
		return o.ChangeTime
	}
	return o.ModTime
}

// fileMode converts a st_mode to an os.FileMode, as package os does.
func fileMode(m uint32) os.FileMode {
	mode := os.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		mode |= os.ModeDir
	case unix.S_IFLNK:
		mode |= os.ModeSymlink
	case unix.S_IFIFO:
		mode |= os.ModeNamedPipe
	case unix.S_IFSOCK:
		mode |= os.ModeSocket
	case unix.S_IFCHR:
		mode |= os.ModeDevice | os.ModeCharDevice
	case unix.S_IFBLK:
		mode |= os.ModeDevice
	}
	if m&unix.S_ISUID != 0 {
		mode |= os.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		mode |= os.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		mode |= os.ModeSticky
	}
	return mode
}

// semValue reads the value of the semaphore file, or -1 when it cannot be
// read or is not a valid semaphore. It reads rather than maps, so a file
// being truncated cannot fault.
func semValue(dfd int, file string) int {
	fd, err := unix.Openat(dfd, file, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size != SemSize {
		return -1
	}
	img := make([]byte, SemSize)
	if n, err := unix.Pread(fd, img, 0); err != nil || n != SemSize {
		return -1
	}
	if binary.LittleEndian.Uint32(img[semPrivateOffset:]) != SemPrivateShared {
		return -1
	}
	v := binary.LittleEndian.Uint64(img) & semValueMask
	if v > SemValueMax {
		return -1
	}
	return int(v)
}
