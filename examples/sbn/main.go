// Command sbn trains sigmoid belief networks on dynamically binarized MNIST
// with the discrete-latent gradient estimators of package infer, and
// evaluates, compares and plots them.
//
// The models are those of NVIL, MuProp, REBAR and RELAX and deeper linear
// ones (-model linear, linear2, linear3, linear4, nonlinear), written as
// ordinary ppl models with mirrored inference networks and trained on the
// ELBO (vi.ELBO) by infer.SVI with Adam. Every estimator is chosen by
// -estimator (see -h).
//
// Modes:
//
//	go run ./examples/sbn                                   # train 20,000 steps (default), print the test ELBO
//	go run ./examples/sbn -estimator arm -steps 2000 -metrics arm.jsonl -save arm.ckpt
//	go run ./examples/sbn -resume arm.ckpt -steps 4000      # continue bit for bit
//	go run ./examples/sbn -mode eval -resume arm.ckpt -iwae 1000
//	go run ./examples/sbn -mode variance -resume arm.ckpt -M 100 -estimator reinforce,nvil,arm,disarm
//	go run ./examples/sbn -mode plot -plot elbo.png a.jsonl b.jsonl
//	go run ./examples/sbn -estimator bpq -critics bpq.critics       # load (if present) and save the critics
//
// Ctrl-C stops training after the current step; the checkpoint is written
// if -save was given.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/backpropq/backpropq/examples/internal/exrun"
)

// options are the command's flags.
type options struct {
	mode      string
	model     string
	estimator string
	steps     int
	duration  time.Duration
	batch     int
	lr        float64
	seed      uint64
	evalEvery int
	logEvery  int
	iwae      int
	evalLimit int
	metrics   string
	plot      string
	save      string
	resume    string
	critics   string
	// criticImage hands the bpq critics the image (q.Input).
	criticImage bool
	reinit      bool
	workers     int
	draws       int
	warmup      int
	// criticWarmup is the training steps that train the estimator alone
	// (infer.SVI.Warmup).
	criticWarmup int
	cpuprofile   string
	quiet        bool
	files        []string
	// set holds the names of the flags given on the command line.
	set map[string]bool
}

func parseFlags(fs *flag.FlagSet, args []string) (options, error) {
	var o options
	fs.StringVar(&o.mode, "mode", "train", "train, eval, variance or plot")
	fs.StringVar(&o.model, "model", "linear", modelHelp())
	fs.StringVar(&o.estimator, "estimator", defaultEstimator, estimatorHelp())
	fs.IntVar(&o.steps, "steps", 20000, "stop after this many steps in all (a resumed run counts the saved ones); 0: no limit")
	fs.DurationVar(&o.duration, "duration", 0, "stop after this much training time in this session (evaluations excluded); 0: no limit")
	fs.IntVar(&o.batch, "batch", 24, "images per step")
	fs.Float64Var(&o.lr, "lr", 3e-4, "Adam learning rate")
	fs.Uint64Var(&o.seed, "seed", 1, "random seed (initialization, minibatches, binarization, estimator noise)")
	fs.IntVar(&o.evalEvery, "eval-every", 5000, "steps between validation ELBOs (0: only at the end)")
	fs.IntVar(&o.logEvery, "log-every", 100, "steps between metrics records and log lines")
	fs.IntVar(&o.iwae, "iwae", 0, "at the end, estimate the test log-likelihood with this many importance samples per image (0: skip)")
	fs.IntVar(&o.evalLimit, "eval-limit", 0, "evaluate on the first N images of each split only (0: whole splits)")
	fs.StringVar(&o.metrics, "metrics", "", "append metrics records to this JSONL file")
	fs.StringVar(&o.plot, "plot", "", "write a plot of the ELBO against steps and seconds to this PNG file (train: this run's metrics; -mode plot: the JSONL files given as arguments)")
	fs.StringVar(&o.save, "save", "", "write a checkpoint to this file at each evaluation and at the end")
	fs.StringVar(&o.resume, "resume", "", "continue from (train) or evaluate (eval, variance) this checkpoint")
	fs.StringVar(&o.critics, "critics", "", "train: load Backprop-Q critics from this file if it exists, save them to it at the end and on Ctrl-C (bpq estimators only)")
	fs.BoolVar(&o.criticImage, "critic-image", true, "bpq estimators: give each latent site's critics the image as extra input (q.Input); false gives them the latent codes only")
	fs.BoolVar(&o.reinit, "critics-reinit", false, "with -critics: start afresh the critics whose saved scope layout differs from the model's, instead of failing")
	fs.IntVar(&o.workers, "workers", 1, "split each step's batch into this many chunks processed in parallel (changes the random numbers, like -seed)")
	fs.IntVar(&o.draws, "M", 100, "variance mode: gradient draws per estimator")
	fs.IntVar(&o.warmup, "warmup", 200, "variance mode: steps that train an estimator's own parameters (baselines, control variates) before measuring, with the model fixed")
	fs.IntVar(&o.criticWarmup, "critic-warmup", 0, "train: the first N steps train the estimator alone (bpq critics, baselines) with the model and the inference network fixed")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile to this file")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress bar or log lines")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.files = fs.Args()
	o.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
	return o, o.check()
}

func newFlagSet() *flag.FlagSet {
	return exrun.NewFlagSet("sbn")
}

func main() {
	fs := newFlagSet()
	o, err := parseFlags(fs, os.Args[1:])
	exrun.ExitOnFlagError(fs, err)
	ctx, stop := exrun.InterruptContext(context.Background())
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "sbn:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	stopProfile, err := exrun.StartCPUProfile(o.cpuprofile)
	if err != nil {
		return err
	}
	defer stopProfile()
	switch o.mode {
	case "train":
		_, err := train(ctx, o, os.Stdout)
		return err
	case "eval":
		return evalMode(o, os.Stdout)
	case "variance":
		return varianceMode(ctx, o, os.Stdout)
	case "plot":
		if o.plot == "" {
			return fmt.Errorf("-mode plot needs -plot FILE.png and metrics files as arguments")
		}
		return plotFiles(o.plot, o.files)
	}
	return fmt.Errorf("unknown -mode %q (train, eval, variance or plot)", o.mode)
}
