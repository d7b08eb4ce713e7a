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
		{Args: []string{"-estimator", "arm,disarm"}, Want: "a list of estimators goes with -mode variance"},
		{Args: []string{"-mode", "variance", "-estimator", "reinforce,nope,arm"}, Want: `"nope"`},
		{Args: []string{"-estimator", "nope"}, Want: `"nope"`},
		{Args: []string{"-critics", missing, "-estimator", "bpq"}, Want: "-critics " + missing},
		{Args: []string{"-save", dir}, Want: "is a folder"},
		{Args: []string{"-batch", "0"}, Want: "-batch must be at least 1"},
		{Args: []string{"-workers", "30"}, Want: "-workers <= -batch"},
		{Args: []string{"-lr", "-1"}, Want: "-lr must be positive"},
		{Args: []string{"-lr", "x"}, Want: "invalid value"},
		{Args: []string{"-log-every", "-1"}, Want: "-log-every"},
		{Args: []string{"-model", "nope"}, Want: "nope"},
		{Args: []string{"-mode", "nope"}, Want: `unknown -mode "nope"`},
		{Args: []string{"-mode", "eval"}, Want: "needs -resume"},
		{Args: []string{"-M", "1", "-mode", "variance"}, Want: "-M must be at least 2"},
		{Args: []string{"-critic-warmup", "-1"}, Want: "-critic-warmup must be at least 0"},
		{Args: []string{"stray"}, Want: "unexpected arguments"},
	}...)
	// Flags given later win: a check that let a bad flag through would
	// train for a millisecond and save.
	for _, p := range exrun.BadFlagProblems("sbn", []string{"-quiet", "-duration", "1ms", "-save", save}, cases) {
		t.Error(p)
	}
	assert.NoFileExists(t, save)
}
