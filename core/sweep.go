package core

import (
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultGrace is the grace period that every tool of shm-redirect uses
// when none is given (STORE.md "Sweeping").
const DefaultGrace = SweepGraceDefault * time.Second

// SweepOptions tunes Store.Sweep.
type SweepOptions struct {
	// Grace spares the objects changed (the newer of mtime and ctime) less
	// than Grace ago: a process may be between creating an object and
	// mapping it. Zero spares none; a negative Grace is an error (EINVAL).
	// The usual value is DefaultGrace.
	Grace time.Duration
	// DryRun reports what would be removed and removes nothing.
	DryRun bool
}

// Sweep removes the objects leaked by processes that died without
// unlinking them, and returns them (or, with DryRun, those it would
// remove). It removes only in a managed store (else ErrNotManaged), only
// regular files owned by the effective uid, never one that a live process
// we may inspect has open or mapped, never one changed within the grace
// period. Right before each removal it checks that the name still refers
// to the same file, unchanged, so a file replaced meanwhile survives.
//
// The Objects returned carry no Holders and no Value (-1).
//
// A process may still open an object between that check and the removal;
// the grace period is what makes this unlikely for a fresh object, and an
// old object nobody holds is by definition leaked.
func (s *Store) Sweep(opts SweepOptions) ([]Object, error) {
	if !s.managed {
		return nil, pathErr("sweep", s.dir, ErrNotManaged)
	}
	grace := opts.Grace
	if grace < 0 {
		return nil, pathErr("sweep", s.dir, unix.EINVAL)
	}
	objs, err := s.entries()
	if err != nil {
		return nil, err
	}
	euid := os.Geteuid()
	now := time.Now()
	var cand []Object
	want := make(map[FileID]bool)
	for _, o := range objs {
		// A journal lists what a dead tracker's tree leaked: the Python
		// tracker's recovery reads it, removes those objects, then the journal.
		if !o.Mode.IsRegular() || o.UID != euid || o.Kind == KindJournal {
			continue
		}
		if grace > 0 && now.Sub(o.changed()) < grace {
			continue
		}
		cand = append(cand, o)
		want[o.id] = true
	}
	// One scan for all candidates; if it fails nothing is known to be
	// unheld, so nothing is removed.
	held, err := Holders(want)
	if err != nil {
		return nil, pathErr("sweep", s.dir, err)
	}
	var removed []Object
	var errs []error
	for _, o := range cand {
		if len(held[o.id]) > 0 {
			continue
		}
		ok, err := s.sweepOne(&o, opts.DryRun)
		if err != nil {
			errs = append(errs, pathErr("sweep", o.File, err))
		}
		if ok {
			removed = append(removed, o)
		}
	}
	return removed, errors.Join(errs...)
}

// sweepOne removes o's file if its name still refers to the same,
// unchanged file. It reports whether it removed it (or would, in a dry run).
func (s *Store) sweepOne(o *Object, dryRun bool) (bool, error) {
	dfd, err := s.dirfd()
	if err != nil {
		return false, err
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, o.File, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if err == unix.ENOENT {
			return false, nil // someone else removed it
		}
		return false, err
	}
	now := objectOf(o.File, &st)
	if now.id != o.id || !now.ChangeTime.Equal(o.ChangeTime) || !now.ModTime.Equal(o.ModTime) {
		return false, nil // replaced or touched since the scan: leave it
	}
	if dryRun {
		return true, nil
	}
	if err := unix.Unlinkat(dfd, o.File, 0); err != nil {
		if err == unix.ENOENT {
			return false, nil
		}
		return false, err
	}
	return true, nil
}
