// Command vae trains variational autoencoders on dynamically binarized
// MNIST with continuous, discrete and mixed latents, all through the same
// machinery: ppl models and guides, the vi.ELBO (or vi.IWAE) objective and
// infer.SVI with per-site estimators.
//
// Models (-model):
//
//   - gauss: the IWAE paper's one-stochastic-layer VAE, 50 Gaussian latents
//     behind two 200-unit tanh layers each way, pathwise gradients, with
//     -analytic-kl for the closed-form KL and -iwae-train K to train the
//     importance-weighted bound instead of the ELBO.
//   - discrete: 20 Categorical latents of 10 classes (one-hot), trained with
//     the estimator -estimator names (gumbel-st, reinforce, nvil, relax,
//     bpq, bpq-cv, bpq-adv).
//   - mixed: one Gaussian and one Categorical latent in one ELBO, trained in
//     one step with pathwise gradients for the Gaussian site and -estimator
//     for the Categorical one (infer.Estimators by address).
//
// Examples:
//
//	go run ./examples/vae -model gauss -steps 5000 -iwae 100 -grid results/gauss
//	go run ./examples/vae -model discrete -analytic-kl -estimator bpq -steps 2000 -critics critics.q
//	go run ./examples/vae -model mixed -estimator bpq-cv -steps 2000 -save mixed.ckpt
//	go run ./examples/vae -resume mixed.ckpt -steps 4000   # continue from the checkpoint
//	go run ./examples/vae -plot curves.png a.jsonl b.jsonl # plot metrics files, train nothing
//
// -critics FILE loads Backprop-Q critics from FILE at the start (when it
// exists) and saves them there at the end, keyed by address: a model with
// an added site reuses the critics of the others. Ctrl-C stops training
// after the current step; the checkpoint is written if -save was given.
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
	model      string
	estimator  string
	steps      int
	duration   time.Duration
	batch      int
	lr         float64
	seed       uint64
	evalEvery  int
	logEvery   int
	iwae       int
	iwaeTrain  int
	analyticKL bool
	evalLimit  int
	iwaeLimit  int
	metrics    string
	plot       string
	grid       string
	save       string
	resume     string
	critics    string
	// criticImage hands the bpq critics the image (q.Input).
	criticImage bool
	workers     int
	varDraws    int
	quiet       bool
	cpuprofile  string
	// files are metrics files to plot (with -plot) instead of training.
	files []string
	// set holds the names of the flags given on the command line.
	set map[string]bool
}

func parseFlags(fs *flag.FlagSet, args []string) (options, error) {
	var o options
	fs.StringVar(&o.model, "model", "gauss", "model: gauss, discrete or mixed")
	fs.StringVar(&o.estimator, "estimator", defaultEstimator, estimatorHelp())
	fs.IntVar(&o.steps, "steps", 0, "stop after this many steps in all (a resumed run counts the saved ones); 0: no limit")
	fs.DurationVar(&o.duration, "duration", 3*time.Minute, "stop after this much training time in this session (evaluations excluded); 0: no limit")
	fs.IntVar(&o.batch, "batch", 20, "images per step")
	fs.Float64Var(&o.lr, "lr", 1e-3, "Adam learning rate")
	fs.Uint64Var(&o.seed, "seed", 1, "random seed (initialization, minibatches, binarization, estimator noise)")
	fs.IntVar(&o.evalEvery, "eval-every", 5000, "steps between validation ELBOs (0: only at the end)")
	fs.IntVar(&o.logEvery, "log-every", 100, "steps between metrics records and log lines")
	fs.IntVar(&o.iwae, "iwae", 0, "at the end, estimate the test log-likelihood with this many importance samples per image (0: skip)")
	fs.IntVar(&o.iwaeTrain, "iwae-train", 0, "train the importance-weighted bound with K particles instead of the ELBO (gauss only; 0: ELBO)")
	fs.BoolVar(&o.analyticKL, "analytic-kl", false, "use the closed-form KL of each latent (Gaussian or categorical) in the training ELBO")
	fs.IntVar(&o.evalLimit, "eval-limit", 0, "evaluate on the first N images of each split only (0: whole splits)")
	fs.IntVar(&o.iwaeLimit, "iwae-limit", 1000, "estimate the test log-likelihood on the first N test images only (0: all; the estimate costs K forward passes per image)")
	fs.StringVar(&o.metrics, "metrics", "", "append metrics records to this JSONL file")
	fs.StringVar(&o.plot, "plot", "", "write a plot of the training bound against steps of every run in the -metrics file to this PNG file; with metrics files as arguments, plot those and train nothing")
	fs.StringVar(&o.grid, "grid", "", "at the end, write PREFIX-recon.png (test inputs beside their reconstructions) and PREFIX-samples.png (samples from the prior)")
	fs.StringVar(&o.save, "save", "", "write a checkpoint to this file at each evaluation and at the end")
	fs.StringVar(&o.resume, "resume", "", "continue from this checkpoint")
	fs.StringVar(&o.critics, "critics", "", "load Backprop-Q critics from this file at the start (if it exists) and save them there at the end (bpq estimators only)")
	fs.BoolVar(&o.criticImage, "critic-image", true, "bpq estimators: give each latent site's critics the image as extra input (q.Input); false gives them the latent codes only")
	fs.IntVar(&o.workers, "workers", 1, "split each step's batch into this many chunks processed in parallel (changes the random numbers, like -seed)")
	fs.IntVar(&o.varDraws, "var-draws", 0, "at the end, measure the log-variance of the inference network's gradient over this many draws on one test batch (0: skip)")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress bar or log lines")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the training run to this file")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.files = fs.Args()
	if len(o.files) > 0 && o.plot == "" {
		return o, fmt.Errorf("unexpected arguments %q (metrics files to plot go with -plot FILE.png)", o.files)
	}
	o.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
	return o, o.check()
}

// check reports flag values that cannot work, before any data is read: a
// number out of range, an unknown name, a file that cannot be written or a
// checkpoint that does not exist.
func (o options) check() error {
	var c exrun.Checks
	if o.resume == "" || o.set["model"] {
		c.Add(checkKind(o.model))
	}
	if _, err := findEstimator(o.estimator); err != nil {
		c.Add(err)
	}
	c.Common(exrun.Common{Steps: o.steps, Duration: o.duration, Batch: o.batch, Workers: o.workers, LR: o.lr,
		EvalEvery: o.evalEvery, LogEvery: o.logEvery, EvalLimit: o.evalLimit})
	c.AtLeast("iwae", o.iwae, 0)
	c.AtLeast("iwae-limit", o.iwaeLimit, 0)
	c.AtLeast("iwae-train", o.iwaeTrain, 0)
	if o.varDraws < 0 || o.varDraws == 1 {
		c.Fail("-var-draws must be 0 or >= 2, got %d", o.varDraws)
	}
	if o.plot != "" && o.metrics == "" && len(o.files) == 0 {
		c.Fail("-plot needs -metrics, or metrics files as arguments")
	}
	if o.grid != "" {
		c.Writable("grid", o.grid+"-recon.png")
	}
	c.Files("resume", o.resume, "save", o.save, "metrics", o.metrics, "plot", o.plot, "critics", o.critics, "cpuprofile", o.cpuprofile)
	return c.Err()
}

// trainProfiled trains, under a CPU profile when -cpuprofile is given.
func trainProfiled(ctx context.Context, o options) error {
	stopProfile, err := exrun.StartCPUProfile(o.cpuprofile)
	if err != nil {
		return err
	}
	defer stopProfile()
	_, err = train(ctx, o, os.Stdout)
	return err
}

func main() {
	fs := exrun.NewFlagSet("vae")
	o, err := parseFlags(fs, os.Args[1:])
	exrun.ExitOnFlagError(fs, err)
	ctx, stop := exrun.InterruptContext(context.Background())
	defer stop()
	if len(o.files) > 0 {
		err = plotFiles(o.plot, o.files)
	} else {
		err = trainProfiled(ctx, o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "vae:", err)
		os.Exit(1)
	}
}
