package main

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/infer"
	"github.com/backpropq/backpropq/q"
)

// errNotAvailable is the error of an estimator or option that is named
// but not built yet.
var errNotAvailable = errors.New("not available yet")

// estimatorSpec is one value of the -estimator flag.
type estimatorSpec struct {
	name string
	help string
	// make returns a fresh estimator (with fresh state) for the model m
	// and the command's options (critic files and settings, for
	// Backprop-Q); nil means the estimator is not available in this build.
	make func(m *sbn, o options) (infer.Estimator, error)
	// critics reports that the estimator learns critics, which -critics
	// loads and saves.
	critics bool
}

// estimators is the table behind -estimator; each Backprop-Q mode plugs in
// with one entry.
var estimators = []estimatorSpec{
	{"reinforce", "score function, no baseline", fixed(infer.ScoreFunction{}), false},
	{"reinforce-ma", "score function, moving-average baseline (decay 0.9)", func(*sbn, options) (infer.Estimator, error) {
		return infer.ScoreFunction{Baseline: infer.NewMovingAverage(0.9)}, nil
	}, false},
	{"nvil", "score function, NVIL input-dependent baseline (100 tanh units) and variance normalization", func(m *sbn, _ options) (infer.Estimator, error) {
		n := infer.NewNVIL(100)
		n.Features = func(sc *infer.SiteContext) (*ad.Tensor, error) { return m.features(sc.Signal.Tape()) }
		return infer.ScoreFunction{Baseline: n}, nil
	}, false},
	{"rloo", "REINFORCE leave-one-out: two samples per image, each one's baseline the other's signal (twice the cost of one sample)", fixed(infer.RLOO{K: 2}), false},
	{"muprop", "MuProp: first-order Taylor control variate at the mean-field point", fixed(infer.MuProp{}), false},
	{"gumbel", "Gumbel-softmax (Concrete) relaxation, temperature 0.5 (biased)", func(*sbn, options) (infer.Estimator, error) {
		return infer.GumbelSoftmax{Temperature: 0.5}, nil
	}, false},
	{"gumbel-st", "straight-through Gumbel-softmax, temperature 0.5 (biased)", func(*sbn, options) (infer.Estimator, error) {
		return infer.GumbelSoftmax{Temperature: 0.5, StraightThrough: true}, nil
	}, false},
	{"rebar", "REBAR with learned temperature and scale", fixed(infer.REBAR{}), false},
	{"relax", "RELAX: learned control variate plus the REBAR one", fixed(infer.RELAX{Concrete: true}), false},
	{"arm", "augment-REINFORCE-merge", fixed(infer.ARM{}), false},
	{"disarm", "DisARM (antithetic ARM)", fixed(infer.DisARM{}), false},
	// Backprop-Q with one MLP critic per (latent layer, cost source),
	// trained by one-step TD. A 200-unit layer cannot be enumerated, so
	// the control variate's correction is the relaxed one (eq. 26 with the
	// critic as c) or the local expectation over single-unit flips.
	{"bpq", "Backprop-Q, learned critic as the local cost (MLP critics, TD(0))", backpropQ("local"), true},
	{"bpq-cv", "Backprop-Q, critic as a relaxed control variate of the actual return (unbiased; MLP critics, TD(0), temperature 0.5)", backpropQ("cv"), true},
	{"bpq-cv-le", "Backprop-Q, critic as a local-expectation control variate of the actual return: each unit's flip evaluated by the critic, no relaxation (unbiased)", backpropQ("cv-le"), true},
	{"bpq-cv-rloo", "bpq-cv with a leave-one-out baseline over two samples per image in place of the fitted b (twice the cost of one sample)", backpropQ("cv-rloo"), true},
	{"bpq-cv-le-rloo", "bpq-cv-le with a leave-one-out baseline over two samples per image (twice the cost of one sample)", backpropQ("cv-le-rloo"), true},
	{"bpq-direct", "bpq with each layer's direct costs (those a function of its scope) exact in its local cost, critics for the rest only", backpropQ("direct"), true},
	{"bpq-cv-direct", "bpq-cv with each layer's direct costs exact in the control variate (relaxed, by a re-run), critics fitting the rest only (unbiased)", backpropQ("cv-direct"), true},
	{"bpq-cv-le-direct", "bpq-cv-le with each layer's direct costs exact in the control variate (relaxed, by a re-run), critics fitting the rest only (unbiased)", backpropQ("cv-le-direct"), true},
	{"bpq-cv-direct-rloo", "bpq-cv-direct with a leave-one-out baseline over two samples per image (twice the cost of one sample)", backpropQ("cv-direct-rloo"), true},
	{"bpq-cv-le-direct-rloo", "bpq-cv-le-direct with a leave-one-out baseline over two samples per image (twice the cost of one sample)", backpropQ("cv-le-direct-rloo"), true},
	{"bpq-adv", "Backprop-Q, advantage (appendix 4.4)", backpropQ("adv"), true},
	{"direct", "bpq-cv-direct with its critics left out of the signal (a = 0): each layer's direct costs exact and the fitted b; beside bpq-cv-direct, measures what the critics add without a second sample (unbiased)", noCritics("cv-direct"), true},
	{"direct-rloo", "bpq-cv-direct-rloo with its critics left out of the signal (a = 0): each layer's direct costs exact and a leave-one-out baseline; measures what the critics add (unbiased)", noCritics("cv-direct-rloo"), true},
}

// noCritics returns the maker of the control variate of mode with its
// critics left out of the learning signal (infer.QControlVariate.NoCritics).
func noCritics(mode string) func(*sbn, options) (infer.Estimator, error) {
	return func(m *sbn, o options) (infer.Estimator, error) {
		e, err := backpropQ(mode)(m, o)
		if err != nil {
			return nil, err
		}
		e.(*infer.QControlVariate).NoCritics = true
		return e, nil
	}
}

// backpropQ returns the maker of a Backprop-Q estimator in mode (local,
// direct, cv, cv-le, their -rloo and -direct variants, or adv).
func backpropQ(mode string) func(*sbn, options) (infer.Estimator, error) {
	return func(_ *sbn, o options) (infer.Estimator, error) {
		// Critics in normalized units: the ELBO's costs are hundreds of
		// nats, which plain MLP critics at this rate never reach.
		critics := infer.NewCritics(q.Config{Kind: q.MLPKind, Hidden: []int{64}, LR: 1e-3, Normalize: true, Seed: o.seed}, q.TD{Lambda: 0})
		if strings.Contains(mode, "direct") {
			// A cost that is a function of the layer's scope is its
			// own Q-function: the network uses it in place of a critic.
			critics.Cache = &q.Cache{Options: q.NetworkOptions{InlineCosts: true}}
		}
		switch mode {
		case "cv", "cv-rloo", "cv-direct", "cv-direct-rloo":
			// The fitted a and b of the control variate take the
			// baseline's place, or a and the leave-one-out baseline.
			return &infer.QControlVariate{Critics: critics, Relaxed: true, Temperature: 0.5, LeaveOneOut: rlooOf(mode)}, nil
		case "cv-le", "cv-le-rloo", "cv-le-direct", "cv-le-direct-rloo":
			return &infer.QControlVariate{Critics: critics, LocalExpectation: true, LeaveOneOut: rlooOf(mode)}, nil
		case "adv":
			return &infer.QAdvantage{Critics: critics}, nil
		}
		return &infer.QLocal{Critics: critics, Baseline: infer.NewMovingAverage(0.9)}, nil
	}
}

// rlooOf returns the samples per image of the leave-one-out baseline of a
// Backprop-Q mode: 2 for the -rloo modes, 0 (none) for the others.
func rlooOf(mode string) int {
	if strings.HasSuffix(mode, "-rloo") {
		return 2
	}
	return 0
}

// samplesOf returns the number of samples per image that est draws: K for
// RLOO and a control variate with a leave-one-out baseline, 1 for every
// other estimator.
func samplesOf(est infer.Estimator) int {
	switch e := est.(type) {
	case infer.RLOO:
		return e.K
	case *infer.QControlVariate:
		return max(e.LeaveOneOut, 1)
	}
	return 1
}

// fixed returns the maker of a stateless estimator.
func fixed(e infer.Estimator) func(*sbn, options) (infer.Estimator, error) {
	return func(*sbn, options) (infer.Estimator, error) { return e, nil }
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
