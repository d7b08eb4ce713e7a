// Command seq2seq trains a stochastic recurrent network to sort strings of
// digits, with a sequence-level cost that has no gradient: the edit
// distance between the sampled output and the target.
//
// A GRU encoder reads 5 to 12 random digits; a GRU decoder samples each
// output token y[t] (a digit or the end token) from a Categorical with
// ppl.Sample until every row has ended or 14 tokens; the cost, through
// ppl.Cost, is the Levenshtein distance to the sorted input. Trainers
// (-trainer): mle (teacher forcing), reinforce (moving-average baseline),
// self-critical (greedy decode as baseline), bpq (a Backprop-Q estimator of infer with one
// critic for all y[*], fed the decoder state), mle+bpq and its control
// mle+self-critical.
//
// Modes:
//
//	go run ./examples/seq2seq                                  # train (default trainer), print test scores and decodes
//	go run ./examples/seq2seq -trainer self-critical -steps 2000 -metrics sc.jsonl -save sc.ckpt
//	go run ./examples/seq2seq -resume sc.ckpt -steps 4000      # continue bit for bit
//	go run ./examples/seq2seq -trainer bpq -critics bpq.critics # load (if present) and save the critics
//	go run ./examples/seq2seq -mode plot -plot curves.png a.jsonl b.jsonl
//
// Ctrl-C stops training after the current step; the checkpoint and the
// critics are written if -save and -critics were given.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/backpropq/backpropq/examples/internal/exrun"
)

// options are the command's flags.
type options struct {
	mode          string
	trainer       string
	cost          string
	bpqMode       string
	lambda        float64
	criticLR      float64
	valueBaseline bool
	criticWarmup  int
	warm          int
	steps         int
	duration      time.Duration
	batch         int
	lr            float64
	seed          uint64
	evalEvery     int
	logEvery      int
	evalLimit     int
	metrics       string
	plot          string
	save          string
	resume        string
	critics       string
	reinit        bool
	workers       int
	quiet         bool
	files         []string
	// set holds the names of the flags given on the command line.
	set map[string]bool
}

// defaultTrainer is the trainer of a run without -trainer.
const defaultTrainer = "self-critical"

func parseFlags(fs *flag.FlagSet, args []string) (options, error) {
	var o options
	fs.StringVar(&o.mode, "mode", "train", "train or plot")
	fs.StringVar(&o.trainer, "trainer", defaultTrainer, trainerHelp())
	fs.StringVar(&o.cost, "cost", "edit", "sequence cost the RL trainers minimize: edit (token edit distance) or bleu (1 - smoothed sentence BLEU-4); evaluation always reports edit distance and exact match")
	fs.StringVar(&o.bpqMode, "bpq-mode", defaultBPQMode, "Backprop-Q learning signal: local (critic as the local cost), cv (critic as control variate, unbiased) or adv (advantage)")
	fs.Float64Var(&o.lambda, "lambda", 0.9, "Backprop-Q: lambda of the critics' lambda-return")
	fs.Float64Var(&o.criticLR, "critic-lr", 1e-3, "Backprop-Q: Adam learning rate of the critic")
	fs.BoolVar(&o.valueBaseline, "value-baseline", true, "Backprop-Q, -bpq-mode local: subtract from Q(y[t]) its mean over y[t]'s values, V = sum_y p(y) Q(y) (the advantage Q - V), before the moving average")
	fs.IntVar(&o.criticWarmup, "critic-warmup", 0, "Backprop-Q, -bpq-mode local or adv: the first N Backprop-Q steps use the control-variate mode (unbiased whatever the critic, which trains the same way), so that the critic has learned before it alone drives the policy")
	fs.IntVar(&o.warm, "warm", 500, "mle+bpq: maximum-likelihood steps before Backprop-Q")
	fs.IntVar(&o.steps, "steps", 0, "stop after this many steps in all (a resumed run counts the saved ones); 0: no limit")
	fs.DurationVar(&o.duration, "duration", 2*time.Minute, "stop after this much training time in this session (evaluations excluded); 0: no limit")
	fs.IntVar(&o.batch, "batch", 32, "input strings per step")
	fs.Float64Var(&o.lr, "lr", 3e-3, "Adam learning rate")
	fs.Uint64Var(&o.seed, "seed", 1, "random seed (initialization, training strings, sampling)")
	fs.IntVar(&o.evalEvery, "eval-every", 250, "steps between validation scores (0: only at the end)")
	fs.IntVar(&o.logEvery, "log-every", 50, "steps between metrics records and log lines")
	fs.IntVar(&o.evalLimit, "eval-limit", 0, "score only the first N strings of the validation and test sets (0: all 500 and 1000)")
	fs.StringVar(&o.metrics, "metrics", "", "append metrics records to this JSONL file")
	fs.StringVar(&o.plot, "plot", "", "write a plot of the validation edit distance against steps and seconds to this PNG file (train: this run's metrics; -mode plot: the JSONL files given as arguments)")
	fs.StringVar(&o.save, "save", "", "write a checkpoint to this file at each evaluation and at the end")
	fs.StringVar(&o.resume, "resume", "", "continue from this checkpoint")
	fs.StringVar(&o.critics, "critics", "", "load Backprop-Q critics from this file if it exists, save them to it at the end and on Ctrl-C (bpq and mle+bpq only)")
	fs.BoolVar(&o.reinit, "critics-reinit", false, "with -critics: start afresh the critics whose saved layout differs from the model's, instead of failing")
	fs.IntVar(&o.workers, "workers", 1, "split each step's batch into this many chunks processed in parallel (changes the random numbers, like -seed)")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress bar or log lines")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.files = fs.Args()
	o.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
	return o, o.check()
}

func main() {
	fs := exrun.NewFlagSet("seq2seq")
	o, err := parseFlags(fs, os.Args[1:])
	exrun.ExitOnFlagError(fs, err)
	ctx, stop := exrun.InterruptContext(context.Background())
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "seq2seq:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, out io.Writer) error {
	switch o.mode {
	case "train":
		if len(o.files) > 0 {
			return fmt.Errorf("unexpected arguments %v (metrics files go with -mode plot)", o.files)
		}
		_, err := train(ctx, o, out)
		return err
	case "plot":
		if o.plot == "" {
			return fmt.Errorf("-mode plot needs -plot FILE.png and metrics files as arguments")
		}
		return plotFiles(o.plot, o.files)
	}
	return fmt.Errorf("unknown -mode %q (train or plot)", o.mode)
}
