package exrun

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
)

// ProgressOptions configures [NewProgress].
type ProgressOptions struct {
	// Total is the step the run stops at (resumed steps included);
	// 0 or less means no step limit.
	Total int64
	// Start is the step the session starts from (non-zero after a
	// resume); steps/s counts the steps of this session only.
	Start int64
	// Duration is the session's time limit, used for the time left when
	// Total is 0; 0 means none.
	Duration time.Duration
	// Objective names the reported value, e.g. "ELBO" or "edit distance".
	// Empty means "objective".
	Objective string
	// Quiet turns every report off.
	Quiet bool
	// Out receives the log lines and [Progress.Printf]; nil means
	// os.Stdout.
	Out io.Writer
	// Bar receives the progress bar when it is a terminal; nil means
	// os.Stderr. A Bar that is not an *os.File on a terminal gives log
	// lines instead of a bar.
	Bar io.Writer
}

// Progress reports a training run: a bar with steps/s, the current
// objective and the time left when standard error is a terminal, plain
// log lines otherwise. It is not safe for concurrent use.
type Progress struct {
	opt ProgressOptions
	bar *progressbar.ProgressBar
}

// IsTerminal reports whether w is an *os.File open on a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// NewProgress returns a reporter for a run configured by opt.
func NewProgress(opt ProgressOptions) *Progress {
	if opt.Out == nil {
		opt.Out = os.Stdout
	}
	if opt.Bar == nil {
		opt.Bar = os.Stderr
	}
	if opt.Objective == "" {
		opt.Objective = "objective"
	}
	p := &Progress{opt: opt}
	if !opt.Quiet && IsTerminal(opt.Bar) {
		max := int64(-1)
		if opt.Total > 0 {
			max = opt.Total
		}
		p.bar = progressbar.NewOptions64(max,
			progressbar.OptionSetWriter(opt.Bar),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("steps"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
		_ = p.bar.Set64(opt.Start)
	}
	return p
}

// Rate returns the steps per second of this session at step after
// seconds of training in it.
func (p *Progress) Rate(step int64, seconds float64) float64 {
	return float64(step-p.opt.Start) / max(seconds, 1e-9)
}

// Left returns the time left at step after seconds of training in this
// session: from the step rate when Total is set, from Duration otherwise,
// and -1 when there is no limit.
func (p *Progress) Left(step int64, seconds float64) time.Duration {
	switch {
	case p.opt.Total > 0:
		r := p.Rate(step, seconds)
		if r <= 0 {
			return -1
		}
		return max(time.Duration(float64(p.opt.Total-step)/r*float64(time.Second)), 0)
	case p.opt.Duration > 0:
		return max(p.opt.Duration-time.Duration(seconds*float64(time.Second)), 0)
	}
	return -1
}

// Line returns the log line for step after seconds of training in this
// session with the given objective value.
func (p *Progress) Line(step int64, seconds, objective float64) string {
	s := fmt.Sprintf("step %7d  %7.1fs  %6.1f steps/s  %s %8.2f", step, seconds, p.Rate(step, seconds), p.opt.Objective, objective)
	if left := p.Left(step, seconds); left >= 0 {
		s += fmt.Sprintf("  %v left", left.Round(time.Second))
	}
	return s
}

// Update reports step after seconds of training in this session with the
// current objective value. The bar, if any, is updated at every call; a
// log line is written only when logLine is true.
func (p *Progress) Update(step int64, seconds, objective float64, logLine bool) {
	switch {
	case p.opt.Quiet:
	case p.bar != nil:
		desc := fmt.Sprintf("%s %8.2f", p.opt.Objective, objective)
		if p.opt.Total <= 0 && p.opt.Duration > 0 {
			desc += fmt.Sprintf(" | %v left", p.Left(step, seconds).Round(time.Second))
		}
		p.bar.Describe(desc)
		_ = p.bar.Set64(step)
	case logLine:
		fmt.Fprintln(p.opt.Out, p.Line(step, seconds, objective))
	}
}

// Printf writes a line (a newline is added) to Out, clearing the bar
// first, unless the reporter is quiet.
func (p *Progress) Printf(format string, args ...any) {
	if p.opt.Quiet {
		return
	}
	if p.bar != nil {
		_ = p.bar.Clear()
	}
	fmt.Fprintf(p.opt.Out, format+"\n", args...)
}

// Finish removes the bar, if any. Call it before printing the run's
// summary.
func (p *Progress) Finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}
