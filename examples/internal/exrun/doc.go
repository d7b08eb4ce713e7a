// Package exrun holds what every example program of this module needs
// around its training loop: a progress reporter, a metrics file, curve
// plots of several runs, a Ctrl-C context, the -steps/-duration budget,
// checkpoints with the program's own section ([SaveCheckpoint]), the
// -critics file ([LoadCritics], [SaveCritics]), -cpuprofile
// ([StartCPUProfile]) and the checks of a command's flags before any work
// starts ([Checks], [ExitOnFlagError]: one line and exit status 2).
//
// A program's loop looks like this:
//
//	ctx, stop := exrun.InterruptContext(context.Background())
//	defer stop()
//	mw, err := exrun.OpenMetrics(path) // nil, nil when path is ""
//	...
//	defer mw.Close()
//	budget := exrun.Budget{Steps: steps, Duration: duration}
//	prog := exrun.NewProgress(exrun.ProgressOptions{Total: steps, Start: done, Duration: duration, Objective: "ELBO", Out: os.Stdout})
//	for !budget.Done(step, elapsed) && ctx.Err() == nil {
//		... one step ...
//		prog.Update(step, seconds, objective, step%100 == 0)
//		mw.Write(record) // any JSON-encodable value
//	}
//	prog.Finish()
//
// and a plot of several runs' records is one call to [PlotCurves] with a
// [Curve] per run, built from the records [ReadJSONL] returns.
//
// The progress reporter draws a bar (github.com/schollz/progressbar/v3)
// only when standard error is a terminal; otherwise it writes a plain log
// line when asked to, so that logs of background runs stay readable.
//
// A [MetricsWriter] is safe for concurrent use; a [Progress] is not.
// Nothing in this package panics on bad input: files that cannot be read
// or written and malformed records are returned as errors prefixed with
// "exrun: ", or, for the checkpoint, critics and profile files, with the
// file's role as the commands report it ("save PATH: ", "-critics PATH: ",
// "cpu profile: ").
package exrun
