package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"

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
	cases := append(exrun.CommonBadFlags(dir), []exrun.BadFlag{
		{Args: []string{"-estimator", "reinforce,nope"}, Want: "reinforce,nope"},
		{Args: []string{"-grid", missing}, Want: "-grid " + missing},
		{Args: []string{"-workers", "0"}, Want: "-workers must be at least 1"},
		{Args: []string{"-lr", "0"}, Want: "-lr must be positive"},
		{Args: []string{"-lr", "x"}, Want: "invalid value"},
		{Args: []string{"-model", "nope"}, Want: "nope"},
		{Args: []string{"-var-draws", "1"}, Want: "-var-draws"},
		{Args: []string{"stray"}, Want: "unexpected arguments"},
	}...)
	// Flags given later win: a check that let a bad flag through would
	// train for a millisecond and save.
	for _, p := range exrun.BadFlagProblems("vae", []string{"-quiet", "-duration", "1ms", "-save", save}, cases) {
		t.Error(p)
	}
	assert.NoFileExists(t, save)
}
