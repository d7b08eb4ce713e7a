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
	save := filepath.Join(dir, "run.ckpt")
	cases := append(exrun.CommonBadFlags(dir), []exrun.BadFlag{
		{Args: []string{"-trainer", "bpq,reinforce"}, Want: "bpq,reinforce"},
		{Args: []string{"-lambda", "2"}, Want: "-lambda must be in [0, 1]"},
		{Args: []string{"-critic-lr", "0"}, Want: "-critic-lr must be positive"},
		{Args: []string{"-warm", "-3"}, Want: "-warm must be at least 0"},
		{Args: []string{"-workers", "0"}, Want: "-workers"},
		{Args: []string{"-cost", "rouge"}, Want: `unknown -cost "rouge"`},
		{Args: []string{"-mode", "nope"}, Want: `unknown -mode "nope"`},
		{Args: []string{"-batch", "x"}, Want: "invalid value"},
	}...)
	// Flags given later win: a check that let a bad flag through would
	// train for a millisecond and save.
	for _, p := range exrun.BadFlagProblems("seq2seq", []string{"-quiet", "-duration", "1ms", "-save", save}, cases) {
		t.Error(p)
	}
	assert.NoFileExists(t, save)
}
