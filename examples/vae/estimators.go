package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/infer"
	"github.com/backpropq/backpropq/q"
)

// estimatorSpec is one value of the -estimator flag for the Categorical
// latents of -model discrete and mixed.
type estimatorSpec struct {
	name string
	help string
	// make returns a fresh estimator (with fresh state).
	make func(m *vae, o options) infer.Estimator
	// critics reports that the estimator learns Backprop-Q critics, which
	// -critics loads and saves.
	critics bool
}

// estimators is the table behind -estimator.
var estimators = []estimatorSpec{
	{"gumbel-st", "straight-through Gumbel-softmax, temperature 0.5 (biased)", func(*vae, options) infer.Estimator {
		return infer.GumbelSoftmax{Temperature: 0.5, StraightThrough: true}
	}, false},
	{"reinforce", "score function, moving-average baseline (decay 0.9)", func(*vae, options) infer.Estimator {
		return infer.ScoreFunction{Baseline: infer.NewMovingAverage(0.9)}
	}, false},
	{"nvil", "score function, NVIL input-dependent baseline (100 tanh units) and variance normalization", func(m *vae, _ options) infer.Estimator {
		n := infer.NewNVIL(100)
		n.Features = func(sc *infer.SiteContext) (*ad.Tensor, error) { return m.features(sc.Signal.Tape()) }
		return infer.ScoreFunction{Baseline: n}
	}, false},
	// RELAX without the REBAR part: the REBAR control variate re-runs the
	// objective once per site, 20 times per step here.
	{"relax", "RELAX with a learned control variate c_phi of the relaxed value (no REBAR term)", func(*vae, options) infer.Estimator {
		return infer.RELAX{}
	}, false},
	{"bpq", "Backprop-Q, learned critic as the local cost (MLP critics, TD(0)), moving-average baseline", backpropQ("local"), true},
	{"bpq-cv", "Backprop-Q, critic as control variate (sums the critic over the 10 classes of each latent)", backpropQ("cv"), true},
	{"bpq-adv", "Backprop-Q, advantage (appendix 4.4)", backpropQ("adv"), true},
}

// backpropQ returns the maker of a Backprop-Q estimator in mode (local,
// cv or adv).
func backpropQ(mode string) func(*vae, options) infer.Estimator {
	return func(_ *vae, o options) infer.Estimator {
		// Normalized units: the costs are hundreds of nats, which an MLP
		// critic at this rate would take many thousands of steps to reach.
		critics := infer.NewCritics(q.Config{Kind: q.MLPKind, Hidden: []int{64}, LR: 1e-3, Normalize: true, Seed: o.seed}, q.TD{Lambda: 0})
		// Normalize: NVIL's variance normalization of each site's term;
		// without it the guide drifts to a collapsed code before the
		// critics learn.
		switch mode {
		case "cv":
			return &infer.QControlVariate{Critics: critics, Normalize: true}
		case "adv":
			return &infer.QAdvantage{Critics: critics, Normalize: true}
		}
		// Q_c - Σ_c' p(c') Q_c': the critic's advantage of the code over
		// the site's other values, for the same image.
		return &infer.QLocal{Critics: critics, Normalize: true, ValueBaseline: true, Baseline: infer.NewMovingAverage(0.9)}
	}
}

// defaultEstimator is the estimator of the Categorical latents of a run
// without -estimator: the unbiased control variate, the best
// score-function estimator on the default (sampled-KL) objective, where the
// local-cost bpq collapses (see the README).
const defaultEstimator = "bpq-cv"

// findEstimator returns the estimator named name, or an error naming the
// known ones.
func findEstimator(name string) (estimatorSpec, error) {
	for _, e := range estimators {
		if e.name == name {
			return e, nil
		}
	}
	names := make([]string, len(estimators))
	for i, e := range estimators {
		names[i] = e.name
	}
	sort.Strings(names)
	return estimatorSpec{}, fmt.Errorf("unknown estimator %q; use one of %s", name, strings.Join(names, ", "))
}

// estimatorHelp is the -estimator flag's usage.
func estimatorHelp() string {
	var b strings.Builder
	b.WriteString("gradient estimator of the Categorical latents (discrete, mixed; the Gaussian ones are always pathwise):")
	for _, e := range estimators {
		fmt.Fprintf(&b, "\n  %-10s %s", e.name, e.help)
	}
	return b.String()
}

// siteEstimators returns the estimators of model kind: pathwise for the
// Gaussian latent, est for the Categorical ones, by address glob.
func siteEstimators(kind string, est infer.Estimator) infer.Estimators {
	switch kind {
	case "gauss":
		return infer.Estimators{Default: infer.Pathwise{}}
	case "discrete":
		return infer.Estimators{Sites: map[string]infer.Estimator{"c*": est}}
	default:
		return infer.Estimators{Sites: map[string]infer.Estimator{gaussAddr: infer.Pathwise{}, catAddr: est}}
	}
}
