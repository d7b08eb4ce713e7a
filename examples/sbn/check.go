package main

import (
	"strings"

	"github.com/backpropq/backpropq/examples/internal/exrun"
)

// check reports the first flag value that cannot work, before any data is
// read or any training starts: a number out of range, an unknown name
// (every name of an -estimator list), a file that cannot be written or a
// checkpoint that does not exist.
func (o options) check() error {
	var c exrun.Checks
	switch o.mode {
	case "train", "eval", "variance":
		if len(o.files) > 0 {
			c.Fail("unexpected arguments %q (metrics files go with -mode plot)", o.files)
		}
	case "plot":
		if o.plot == "" {
			c.Fail("-mode plot needs -plot FILE.png and metrics files as arguments")
		}
	default:
		c.Fail("unknown -mode %q (train, eval, variance or plot)", o.mode)
	}
	if o.resume == "" || o.set["model"] {
		_, err := findArch(o.model)
		c.Add(err)
	}
	names := strings.Split(o.estimator, ",")
	if len(names) > 1 && o.mode != "variance" {
		c.Fail("-estimator %s: a list of estimators goes with -mode variance", o.estimator)
	}
	for _, name := range names {
		if _, err := findEstimator(name); err != nil {
			c.Fail("-estimator: %v", err)
		}
	}
	c.Common(exrun.Common{Steps: o.steps, Duration: o.duration, Batch: o.batch, Workers: o.workers, LR: o.lr,
		EvalEvery: o.evalEvery, LogEvery: o.logEvery, EvalLimit: o.evalLimit})
	c.AtLeast("iwae", o.iwae, 0)
	c.AtLeast("M", o.draws, 2)
	c.AtLeast("warmup", o.warmup, 0)
	c.AtLeast("critic-warmup", o.criticWarmup, 0)
	if o.mode != "train" && o.mode != "plot" && o.resume == "" {
		c.Fail("-mode %s needs -resume CHECKPOINT", o.mode)
	}
	c.Add(criticsCheck(o))
	c.Files("resume", o.resume, "save", o.save, "metrics", o.metrics, "plot", o.plot, "critics", o.critics, "cpuprofile", o.cpuprofile)
	return c.Err()
}
