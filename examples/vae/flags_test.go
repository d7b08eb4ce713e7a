package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/examples/internal/exrun"
)

func TestMain(m *testing.M) {
	exrun.ServeCommand(main)
	os.Exit(m.Run())
}

// Every bad flag ends the command with one line on standard error and
// status 2 before any work: nothing is written, not even the files the
// other flags name.
func TestBadFlagsExitStatus(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "no-such-folder", "x")
	save := filepath.Join(dir, "run.ckpt")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-steps", "-1"}, "-steps must be at least 0"},
		{[]string{"-duration", "-1m"}, "-duration must not be negative"},
		{[]string{"-estimator", "reinforce,nope"}, "reinforce,nope"},
		{[]string{"-save", missing}, "-save " + missing},
		{[]string{"-metrics", missing}, "-metrics " + missing},
		{[]string{"-grid", missing}, "-grid " + missing},
		{[]string{"-resume", filepath.Join(dir, "none.ckpt")}, "-resume"},
		{[]string{"-workers", "0"}, "-workers must be at least 1"},
		{[]string{"-lr", "0"}, "-lr must be positive"},
		{[]string{"-lr", "x"}, "invalid value"},
		{[]string{"-model", "nope"}, "nope"},
		{[]string{"-var-draws", "1"}, "-var-draws"},
		{[]string{"stray"}, "unexpected arguments"},
	} {
		// Flags given later win: a check that let a bad flag through
		// would train for a millisecond and save.
		args := append([]string{"-quiet", "-duration", "1ms", "-save", save}, c.args...)
		assert.Empty(t, exrun.FlagRejection("vae", c.want, args...), "%v", c.args)
		assert.NoFileExists(t, save)
	}
	status, _, stderr, err := exrun.RunCommand("-h")
	require.NoError(t, err)
	assert.Equal(t, 0, status)
	assert.Contains(t, stderr, "-estimator")
}
