package main

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/infer"
)

// errNotAvailable is the error of an estimator or option that is named
// but not built yet.
var errNotAvailable = errors.New("not available yet")

// estimatorSpec is one value of the -estimator flag.
type estimatorSpec struct {
	name string
	help string
	// make returns a fresh estimator (with fresh state) for the model m;
	// nil means the estimator is not available in this build.
	make func(m *sbn) infer.Estimator
}

// estimators is the table behind -estimator; each Backprop-Q mode plugs in
// with one entry.
var estimators = []estimatorSpec{
	{"reinforce", "score function, no baseline", func(*sbn) infer.Estimator { return infer.ScoreFunction{} }},
	{"reinforce-ma", "score function, moving-average baseline (decay 0.9)", func(*sbn) infer.Estimator {
		return infer.ScoreFunction{Baseline: infer.NewMovingAverage(0.9)}
	}},
	{"nvil", "score function, NVIL input-dependent baseline (100 tanh units) and variance normalization", func(m *sbn) infer.Estimator {
		n := infer.NewNVIL(100)
		n.Features = func(sc *infer.SiteContext) (*ad.Tensor, error) { return m.features(sc.Signal.Tape()) }
		return infer.ScoreFunction{Baseline: n}
	}},
	{"muprop", "MuProp: first-order Taylor control variate at the mean-field point", func(*sbn) infer.Estimator { return infer.MuProp{} }},
	{"gumbel", "Gumbel-softmax (Concrete) relaxation, temperature 0.5 (biased)", func(*sbn) infer.Estimator {
		return infer.GumbelSoftmax{Temperature: 0.5}
	}},
	{"gumbel-st", "straight-through Gumbel-softmax, temperature 0.5 (biased)", func(*sbn) infer.Estimator {
		return infer.GumbelSoftmax{Temperature: 0.5, StraightThrough: true}
	}},
	{"rebar", "REBAR with learned temperature and scale", func(*sbn) infer.Estimator { return infer.REBAR{} }},
	{"relax", "RELAX: learned control variate plus the REBAR one", func(*sbn) infer.Estimator { return infer.RELAX{Concrete: true} }},
	{"arm", "augment-REINFORCE-merge", func(*sbn) infer.Estimator { return infer.ARM{} }},
	{"disarm", "DisARM (antithetic ARM)", func(*sbn) infer.Estimator { return infer.DisARM{} }},
	{"bpq", "Backprop-Q, local cost", nil},
	{"bpq-cv", "Backprop-Q, critic as control variate", nil},
	{"bpq-adv", "Backprop-Q, advantage", nil},
}

// defaultEstimator is the estimator of a run without -estimator.
const defaultEstimator = "disarm"

// findEstimator returns the estimator named name, or an error naming the
// known ones, or saying that it is not available yet.
func findEstimator(name string) (estimatorSpec, error) {
	for _, e := range estimators {
		if e.name == name {
			if e.make == nil {
				return e, fmt.Errorf("estimator %q (%s) is %w in this build (it comes with package q's infer estimator); use one of %s", name, e.help, errNotAvailable, availableEstimators())
			}
			return e, nil
		}
	}
	return estimatorSpec{}, fmt.Errorf("unknown estimator %q; use one of %s", name, availableEstimators())
}

// availableEstimators lists the estimators that can run.
func availableEstimators() string {
	var names []string
	for _, e := range estimators {
		if e.make != nil {
			names = append(names, e.name)
		}
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// estimatorHelp is the -estimator flag's usage.
func estimatorHelp() string {
	var b strings.Builder
	b.WriteString("gradient estimator of the latent layers (comma-separated list in -mode variance):")
	for _, e := range estimators {
		avail := ""
		if e.make == nil {
			avail = " [not available yet]"
		}
		fmt.Fprintf(&b, "\n  %-12s %s%s", e.name, e.help, avail)
	}
	return b.String()
}
