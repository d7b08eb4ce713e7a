package exrun

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

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
