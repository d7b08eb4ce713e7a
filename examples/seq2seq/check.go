package main

import (
	"github.com/backpropq/backpropq/examples/internal/exrun"
)

// check reports the first flag value that cannot work, before any
// training starts: a number out of range, an unknown name, a file that
// cannot be written or a checkpoint that does not exist.
func (o options) check() error {
	var c exrun.Checks
	switch o.mode {
	case "train":
		if len(o.files) > 0 {
			c.Fail("unexpected arguments %v (metrics files go with -mode plot)", o.files)
		}
	case "plot":
		if o.plot == "" {
			c.Fail("-mode plot needs -plot FILE.png and metrics files as arguments")
		}
	default:
		c.Fail("unknown -mode %q (train or plot)", o.mode)
	}
	if _, err := findTrainer(o.trainer); err != nil {
		c.Add(err)
	}
	if _, ok := costs[o.cost]; !ok {
		c.Fail("unknown -cost %q (edit or bleu)", o.cost)
	}
	if _, ok := bpqModes[o.bpqMode]; !ok {
		c.Fail("unknown -bpq-mode %q (local, cv or adv)", o.bpqMode)
	}
	if !(o.lambda >= 0 && o.lambda <= 1) {
		c.Fail("-lambda must be in [0, 1], got %v", o.lambda)
	}
	c.Positive("critic-lr", o.criticLR)
	c.AtLeast("critic-warmup", o.criticWarmup, 0)
	c.AtLeast("warm", o.warm, 0)
	c.Common(exrun.Common{Steps: o.steps, Duration: o.duration, Batch: o.batch, Workers: o.workers, LR: o.lr,
		EvalEvery: o.evalEvery, LogEvery: o.logEvery, EvalLimit: o.evalLimit})
	c.Files("resume", o.resume, "save", o.save, "metrics", o.metrics, "plot", o.plot, "critics", o.critics)
	return c.Err()
}
