package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// leftovers returns the names of temporary files left in dir.
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			names = append(names, e.Name())
		}
	}
	return names
}

func TestWriteFile(t *testing.T) {
	tests := []struct {
		name string
		old  []byte // nil: no file before
		data []byte
	}{
		{"create", nil, []byte("hello")},
		{"replace longer", []byte("a much longer previous content"), []byte("short")},
		{"replace with empty", []byte("previous"), []byte{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f.bin")
			if tc.old != nil {
				require.NoError(t, os.WriteFile(path, tc.old, 0o600))
			}
			require.NoError(t, WriteFile(path, tc.data, 0o640))
			got, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Equal(t, tc.data, got)
			info, err := os.Stat(path)
			require.NoError(t, err)
			require.Equal(t, os.FileMode(0o640), info.Mode().Perm()&0o640)
			require.Empty(t, leftovers(t, dir))
		})
	}
}

func TestWriteFailureLeavesTargetAlone(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name string
		old  []byte
	}{
		{"no previous file", nil},
		{"previous file", []byte("previous content")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f.bin")
			if tc.old != nil {
				require.NoError(t, os.WriteFile(path, tc.old, 0o600))
			}
			// Write more than the buffer holds before failing, so that part
			// of the new content has reached the temporary file.
			err := Write(path, 0o600, func(w io.Writer) error {
				_, err := w.Write(make([]byte, 1<<17))
				require.NoError(t, err)
				return boom
			})
			require.ErrorIs(t, err, boom)
			got, err := os.ReadFile(path)
			if tc.old == nil {
				require.ErrorIs(t, err, os.ErrNotExist)
			} else {
				require.NoError(t, err)
				require.Equal(t, tc.old, got)
			}
			require.Empty(t, leftovers(t, dir))
		})
	}
}

func TestWriteBadPaths(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		path string
	}{
		{"missing directory", filepath.Join(dir, "no", "such", "dir", "f")},
		{"directory", dir + string(filepath.Separator)},
		{"target is a directory", dir},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := WriteFile(tc.path, []byte("x"), 0o600)
			require.Error(t, err)
			require.Contains(t, err.Error(), "atomicfile")
		})
	}
	require.Empty(t, leftovers(t, dir))
}
