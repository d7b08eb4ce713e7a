package exrun

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/internal/ckpt"
	"github.com/backpropq/backpropq/q"
)

// LoadCritics reads nothing from a missing file, fails on a damaged one
// with the flag's name, and round-trips a saved set.
func TestLoadCritics(t *testing.T) {
	dir := t.TempDir()
	set := q.NewSet(q.Config{Kind: q.TabularKind})
	ok, err := LoadCritics(filepath.Join(dir, "missing"), set, false)
	require.NoError(t, err)
	require.False(t, ok)

	bad := filepath.Join(dir, "bad")
	require.NoError(t, os.WriteFile(bad, []byte("not a critics file"), 0o644))
	ok, err = LoadCritics(bad, set, false)
	require.ErrorContains(t, err, "-critics "+bad)
	require.False(t, ok)

	good := filepath.Join(dir, "good")
	require.NoError(t, SaveCritics(good, set))
	ok, err = LoadCritics(good, q.NewSet(q.Config{Kind: q.TabularKind}), false)
	require.NoError(t, err)
	require.True(t, ok)
}

// ReadCheckpoint decodes the command's section and says which file is not
// a checkpoint of the command, or is damaged.
func TestReadCheckpoint(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	require.NoError(t, ckpt.WriteFile(good, map[string][]byte{"meta": []byte(`{"Steps":7}`), "other": {1}}))
	var m struct{ Steps int }
	sections, err := ReadCheckpoint(good, "meta", &m)
	require.NoError(t, err)
	require.Equal(t, 7, m.Steps)
	require.Equal(t, []byte{1}, sections["other"])

	_, err = ReadCheckpoint(good, "sbn", &m)
	require.ErrorContains(t, err, "not a checkpoint of this command (no sbn section)")

	bad := filepath.Join(dir, "bad")
	require.NoError(t, os.WriteFile(bad, []byte("damaged"), 0o644))
	_, err = ReadCheckpoint(bad, "meta", &m)
	require.ErrorContains(t, err, "resume "+bad)
}
