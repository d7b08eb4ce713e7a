package exrun

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// NewFlagSet returns a flag set for the command name that reports its
// errors to its caller only (see [ExitOnFlagError]).
func NewFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// ExitOnFlagError ends the command when parsing or checking its flags
// failed: after the usage with status 0 for -h, else with the error on one
// line of standard error and status 2, before any work starts.
func ExitOnFlagError(fs *flag.FlagSet, err error) {
	if err == nil {
		return
	}
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(os.Stderr)
		fmt.Fprintf(os.Stderr, "Usage of %s:\n", fs.Name())
		fs.PrintDefaults()
		os.Exit(0)
	}
	fmt.Fprintf(os.Stderr, "%s: %s\n", fs.Name(), strings.ReplaceAll(err.Error(), "\n", " "))
	os.Exit(2)
}

// Checks accumulates the first failed check of a command's flags.
type Checks struct {
	err error
}

// Err returns the first failed check, or nil.
func (c *Checks) Err() error { return c.err }

// Fail records a failed check unless one was recorded before.
func (c *Checks) Fail(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf(format, args...)
	}
}

// Add records err unless it is nil or a check failed before.
func (c *Checks) Add(err error) {
	if c.err == nil {
		c.err = err
	}
}

// AtLeast checks that the integer flag name is at least min.
func (c *Checks) AtLeast(name string, v, min int) {
	if v < min {
		c.Fail("-%s must be at least %d, got %d", name, min, v)
	}
}

// Positive checks that the float flag name is positive and finite.
func (c *Checks) Positive(name string, v float64) {
	if !(v > 0) || math.IsInf(v, 0) {
		c.Fail("-%s must be positive, got %v", name, v)
	}
}

// Duration checks that the duration flag name is not negative.
func (c *Checks) Duration(name string, v time.Duration) {
	if v < 0 {
		c.Fail("-%s must not be negative, got %v", name, v)
	}
}

// Writable checks that a file can be created beside path, the file of the
// flag name (nothing to check when path is ""): it creates and removes a
// temporary file in path's folder, so that a run does not find out only
// when it saves, after the training.
func (c *Checks) Writable(name, path string) {
	if c.err != nil || path == "" {
		return
	}
	if info, err := os.Stat(path); err == nil && info.IsDir() {
		c.Fail("-%s %s: is a folder", name, path)
		return
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".check-*")
	if err != nil {
		c.Fail("-%s %s: cannot write there: %v", name, path, err)
		return
	}
	f.Close()
	os.Remove(f.Name())
}

// Readable checks that the file of the flag name exists (nothing to check
// when path is "").
func (c *Checks) Readable(name, path string) {
	if c.err != nil || path == "" {
		return
	}
	if _, err := os.Stat(path); err != nil {
		c.Fail("-%s %s: %v", name, path, err)
	}
}

// commandEnv marks a test binary run as the command itself.
const commandEnv = "BACKPROPQ_EXAMPLE_AS_COMMAND"

// ServeCommand runs main and exits when the process is a test binary that
// [RunCommand] started as the command; a TestMain calls it first.
func ServeCommand(main func()) {
	if os.Getenv(commandEnv) == "1" {
		main()
		os.Exit(0)
	}
}

// RunCommand runs the current test binary as the command (its TestMain
// calls [ServeCommand]) with args, and returns its exit status and what it
// wrote to standard output and standard error.
func RunCommand(args ...string) (status int, stdout, stderr string, err error) {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), commandEnv+"=1")
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), out.String(), errOut.String(), nil
	}
	return 0, out.String(), errOut.String(), err
}

// FlagRejection runs the command name (see [RunCommand]) with args, which
// hold a bad flag, and says what is wrong with how it rejected them: ""
// when it exited with status 2 and one line on standard error that starts
// with "name: " and contains want, and wrote nothing to standard output.
func FlagRejection(name, want string, args ...string) string {
	status, stdout, stderr, err := RunCommand(args...)
	switch {
	case err != nil:
		return err.Error()
	case status != 2:
		return fmt.Sprintf("exit status %d, want 2 (stderr %q)", status, stderr)
	case stdout != "":
		return fmt.Sprintf("wrote %q to standard output", stdout)
	case strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, name+": ") || !strings.Contains(stderr, want):
		return fmt.Sprintf("standard error %q, want one line %q... containing %q", stderr, name+": ", want)
	}
	return ""
}

// Common are the flags every example's training run has.
type Common struct {
	Steps     int
	Duration  time.Duration
	Batch     int
	Workers   int
	LR        float64
	EvalEvery int
	LogEvery  int
	EvalLimit int
}

// Common checks the flags every example's training run has.
func (c *Checks) Common(f Common) {
	c.AtLeast("steps", f.Steps, 0)
	c.Duration("duration", f.Duration)
	c.AtLeast("batch", f.Batch, 1)
	c.AtLeast("workers", f.Workers, 1)
	if f.Workers > f.Batch {
		c.Fail("need 1 <= -workers <= -batch, got -workers %d, -batch %d", f.Workers, f.Batch)
	}
	c.Positive("lr", f.LR)
	c.AtLeast("eval-every", f.EvalEvery, 0)
	c.AtLeast("log-every", f.LogEvery, 0)
	c.AtLeast("eval-limit", f.EvalLimit, 0)
}

// Files checks the files of the flags given as (name, path) pairs: the
// "resume" flag's must exist, the others must be writable (see
// [Checks.Writable]).
func (c *Checks) Files(pairs ...string) {
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i] == "resume" {
			c.Readable(pairs[i], pairs[i+1])
		} else {
			c.Writable(pairs[i], pairs[i+1])
		}
	}
}

// A BadFlag is a command line with one bad flag and what the one-line
// error must contain.
type BadFlag struct {
	Args []string
	Want string
}

// CommonBadFlags returns the bad values of the flags every example takes
// through [Common] (-steps, -duration, -save, -metrics, -resume), with the
// error each must give; dir is a folder the test owns.
func CommonBadFlags(dir string) []BadFlag {
	missing := filepath.Join(dir, "no-such-folder", "x")
	return []BadFlag{
		{Args: []string{"-steps", "-1"}, Want: "-steps must be at least 0"},
		{Args: []string{"-duration", "-5s"}, Want: "-duration must not be negative"},
		{Args: []string{"-save", missing}, Want: "-save " + missing},
		{Args: []string{"-metrics", missing}, Want: "-metrics " + missing},
		{Args: []string{"-resume", filepath.Join(dir, "none.ckpt")}, Want: "-resume"},
	}
}

// BadFlagProblems runs the command name (see [RunCommand]) on each case,
// after the flags base (which a case's flags override), and returns what
// is wrong with how it rejected them (see [FlagRejection]); and checks
// that -h prints the usage with status 0.
func BadFlagProblems(name string, base []string, cases []BadFlag) []string {
	var problems []string
	for _, c := range cases {
		args := append(append([]string(nil), base...), c.Args...)
		if p := FlagRejection(name, c.Want, args...); p != "" {
			problems = append(problems, fmt.Sprintf("%v: %s", c.Args, p))
		}
	}
	status, _, stderr, err := RunCommand("-h")
	if err != nil || status != 0 || !strings.Contains(stderr, "Usage of "+name) {
		problems = append(problems, fmt.Sprintf("-h: status %d, error %v, stderr %q", status, err, stderr))
	}
	return problems
}
