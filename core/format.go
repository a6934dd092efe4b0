package core

// The on-disk format of the store. These constants are the single source of
// truth: shim/store_format.h and pybind/shm_redirect/store/format.py are
// generated from this table by `go generate ./core` (internal/genheader), and
// TestGeneratedFilesAreFresh fails when a checked-in copy differs from what
// the table produces.
//
// Keep every value here a literal that C can read: a decimal or octal
// integer, or a Go string without escapes.

//go:generate go run ./internal/genheader -o ../shim/store_format.h -py ../pybind/shm_redirect/store/format.py

// FormatConst is one named constant shared with the C shim.
type FormatConst struct {
	Name  string // C name, without the SHMR_ prefix
	Value any    // int or string
	Doc   string
}

// Format lists the shared constants in the order they appear in the header.
var Format = []FormatConst{
	{"SEM_SIZE", SemSize, "bytes in a semaphore file: glibc's sem_t on LP64"},
	{"SEM_PRIVATE_OFFSET", semPrivateOffset, "offset of the int 'private' field of glibc's struct new_sem"},
	{"SEM_PRIVATE_SHARED", SemPrivateShared, "'private' value of a process-shared semaphore (FUTEX_PRIVATE_FLAG, inverted by glibc)"},
	{"SEM_VALUE_MAX", SemValueMax, "largest semaphore value (SEM_VALUE_MAX)"},
	{"SEM_NWAITERS_SHIFT", semNwaitersShift, "the 64-bit data word holds the value below this bit, the waiter count above"},
	{"SEM_PREFIX", SemPrefix, "a semaphore NAME lives in the file SEM_PREFIX NAME"},
	{"SEM_TMP_TEMPLATE", semTmpTemplate, "mktemp-style name of a semaphore file before link() publishes it"},
	{"SEM_TMP_RETRIES", semTmpRetries, "attempts at a fresh temporary name before EAGAIN (as glibc)"},
	{"SEM_NAME_MAX", SemNameMax, "longest semaphore name (NAME_MAX minus the prefix)"},
	{"SHM_NAME_MAX", ShmNameMax, "longest segment name (NAME_MAX)"},
	{"DIR_MODE", DirMode, "mode of a store directory we create (like /dev/shm), set with fchmod so umask does not apply"},
	{"ENV_DIR", EnvDir, "environment variable naming the store directory"},
	{"NATIVE_DIR", NativeDir, "glibc's directory; used natively when it is a writable tmpfs"},
	{"DEFAULT_TMPDIR", DefaultTmpDir, "parent of the store when neither SHMR_ENV_DIR nor TMPDIR is set"},
	{"STORE_SUBDIR", StoreSubdir, "the store is $TMPDIR/STORE_SUBDIR"},
	{"TMPFS_MAGIC", TmpfsMagic, "statfs f_type of tmpfs"},
	{"SWEEP_GRACE_DEFAULT", SweepGraceDefault, "seconds of a sweep's grace period when none is given (0: none; negative: EINVAL)"},
	{"JOURNAL_PREFIX", JournalPrefix, "a resource tracker's journal in the store: JOURNAL_PREFIX PID.STARTTIME (not an object)"},
}

// PythonNames are the constants of Format that the Python package gets: the
// sizes and names its bindings need, never the rules that choose or check a
// directory (TMPDIR, tmpfs, modes), which it asks the C library for.
var PythonNames = []string{"SEM_SIZE", "SEM_VALUE_MAX", "SEM_PREFIX", "SEM_NAME_MAX",
	"SHM_NAME_MAX", "ENV_DIR", "NATIVE_DIR", "SWEEP_GRACE_DEFAULT", "JOURNAL_PREFIX"}

const (
	// SemSize is the size of a semaphore file: sizeof(sem_t) on 64-bit glibc.
	SemSize = 32
	// SemPrivateShared is the value of new_sem.private for a shared semaphore.
	SemPrivateShared = 128
	// SemValueMax is SEM_VALUE_MAX (INT_MAX).
	SemValueMax = 2147483647
	// SemPrefix prefixes a semaphore's name to form its file name.
	SemPrefix = "sem."
	// SemNameMax is the longest semaphore name, after leading slashes are stripped.
	SemNameMax = 251
	// ShmNameMax is the longest segment name, after leading slashes are stripped.
	ShmNameMax = 255
	// DirMode is the mode of a store directory created by us.
	DirMode = 01777
	// EnvDir names the environment variable that selects the store directory.
	EnvDir = "SHM_REDIRECT_DIR"
	// NativeDir is where glibc keeps semaphores and segments.
	NativeDir = "/dev/shm"
	// DefaultTmpDir is used when TMPDIR is unset.
	DefaultTmpDir = "/tmp"
	// StoreSubdir is the store's name under the temporary directory.
	StoreSubdir = "shm"
	// JournalPrefix starts the name of a resource tracker's journal
	// (pybind/shm_redirect/mp/resource_tracker.py): not an object, never swept.
	JournalPrefix = ".tracker."
	// SweepGraceDefault is DefaultGrace in seconds.
	SweepGraceDefault = 60
	// TmpfsMagic is TMPFS_MAGIC from linux/magic.h.
	TmpfsMagic = 0x01021994

	semPrivateOffset = 8
	semNwaitersShift = 32
	semTmpTemplate   = "sem.XXXXXX"
	semTmpRetries    = 50
)
