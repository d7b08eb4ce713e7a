// Package atomicfile writes files so that a reader, or a crash, sees either
// the old content or the new, never a partial file.
//
// [Write] and [WriteFile] write to a temporary file in the target's
// directory, flush it to stable storage, rename it over the target and then
// flush the directory, so that the rename itself survives a crash. On any
// error the temporary file is removed and the target is left as it was.
package atomicfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
)

// tempPrefix starts the name of every temporary file, so that leftovers of
// a crashed process are easy to recognise (and tests can look for them).
const tempPrefix = ".atomicfile-"

// WriteFile writes data to path atomically, creating it with permissions
// perm (before the umask) or replacing it.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return Write(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Write calls fn with a buffered writer on a temporary file in path's
// directory and, if fn returns nil, makes the file path atomically. If fn
// or any file operation fails, Write removes the temporary file, leaves
// path unchanged and returns the error, which for file operations names
// the path.
func Write(path string, perm os.FileMode, fn func(w io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if base == "" {
		return fmt.Errorf("atomicfile: %q names a directory, not a file", path)
	}
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, tempPrefix+base+"-*")
	if err != nil {
		return fmt.Errorf("atomicfile: write %q: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close() // a second Close only reports os.ErrClosed
			os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<16)
	if err := fn(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("atomicfile: write %q: %w", path, err)
	}
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("atomicfile: write %q: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("atomicfile: write %q: sync: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("atomicfile: write %q: close: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("atomicfile: write %q: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		// The new content is in place; only its durability across a crash
		// is in doubt, which the caller should still hear about.
		return fmt.Errorf("atomicfile: write %q: sync directory: %w", path, err)
	}
	return nil
}

// syncDir flushes the directory entry of a rename to stable storage.
// Windows cannot open a directory for syncing, and its rename is already
// as durable as it gets, so there it does nothing.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, os.ErrInvalid) {
		// Some file systems do not support syncing directories.
		return nil
	}
	return err
}
