package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/infer"
	"github.com/backpropq/backpropq/q"
)

// trainerSpec is one value of the -trainer flag.
type trainerSpec struct {
	name string
	help string
	// estimator returns the estimator of the token sites for the options
	// o; nil for maximum likelihood, which has no sample sites.
	estimator func(o options) (infer.Estimator, error)
	// warm reports that the first -warm steps are maximum likelihood.
	warm bool
	// greedy reports that the program records the greedy decode's cost
	// (the self-critical baseline).
	greedy bool
}

// trainers is the table behind -trainer.
var trainers = []trainerSpec{
	{"mle", "teacher forcing: maximum likelihood of the targets (exposure bias)", nil, false, false},
	{"reinforce", "score function with a moving-average baseline (decay 0.9) per token site", func(options) (infer.Estimator, error) {
		return infer.ScoreFunction{Baseline: infer.NewMovingAverage(0.9)}, nil
	}, false, false},
	{"self-critical", "score function with the greedy decode's cost of the same input as baseline", selfCritical, false, true},
	{"bpq", "Backprop-Q: one MLP critic for all y[*] (address template) fed the decoder state, lambda-return; mode by -bpq-mode", backpropQ, false, false},
	{"mle+bpq", "maximum likelihood for -warm steps, then bpq", backpropQ, true, false},
	{"mle+self-critical", "maximum likelihood for -warm steps, then self-critical (the control for mle+bpq)", selfCritical, true, true},
}

// selfCritical returns the self-critical estimator.
func selfCritical(options) (infer.Estimator, error) {
	return infer.ScoreFunction{Baseline: greedyBaseline{}}, nil
}

// defaultBPQMode is the -bpq-mode of a run that does not give it.
const defaultBPQMode = "cv"

// bpqModes are the values of -bpq-mode: the Backprop-Q estimator types
// (infer.QLocal, infer.QControlVariate, infer.QAdvantage).
var bpqModes = map[string]bool{"local": true, "cv": true, "adv": true}

// backpropQ returns the Backprop-Q estimator that o describes: one MLP
// critic (64 tanh units) serves every y[t] through the template "y[*]",
// with the index and the decoder state before y[t] (q.Input) as extra
// features, on the merged network reduced to a chain, trained toward the
// graph lambda-return. With -critic-warmup, a local or advantage
// estimator starts as the control variate (see warmupQ).
func backpropQ(o options) (infer.Estimator, error) {
	if !(o.lambda >= 0 && o.lambda <= 1) {
		return nil, fmt.Errorf("-lambda must be in [0, 1], got %v", o.lambda)
	}
	cfg := q.Config{Kind: q.MLPKind, Hidden: []int{64}, LR: o.criticLR, Templates: []string{"y[*]"}, Seed: o.seed}
	critics := infer.NewCritics(cfg, q.TD{Lambda: o.lambda})
	critics.Cache = &q.Cache{Options: q.NetworkOptions{Merge: true, Reduce: q.ReduceChain}}
	var main bpqEstimator
	switch o.bpqMode {
	case "local":
		main = &infer.QLocal{Critics: critics, ValueBaseline: o.valueBaseline, Baseline: infer.NewMovingAverage(0.9)}
	case "cv":
		return &infer.QControlVariate{Critics: critics}, nil
	case "adv":
		main = &infer.QAdvantage{Critics: critics}
	default:
		return nil, fmt.Errorf("unknown -bpq-mode %q (local, cv or adv)", o.bpqMode)
	}
	if o.criticWarmup > 0 {
		return &warmupQ{warm: &infer.QControlVariate{Critics: critics}, main: main}, nil
	}
	return main, nil
}

// greedyBaseline is the self-critical baseline (Rennie et al., 2017): the
// edit distance of the greedy decode of the row's input, which the program
// records at greedyAddr. It does not depend on the sampled tokens, so the
// estimate stays unbiased.
type greedyBaseline struct{}

// Center subtracts the greedy decode's cost from the signal.
func (greedyBaseline) Center(sc *infer.SiteContext, signal *ad.Tensor) (*ad.Tensor, *ad.Tensor, func(), error) {
	g := sc.Trace.Site(greedyAddr)
	if g == nil {
		return nil, nil, nil, errors.New("self-critical: the trace has no greedy cost (site " + greedyAddr + ")")
	}
	if g.Value.Rows() != signal.Rows() {
		return nil, nil, nil, fmt.Errorf("self-critical: %d greedy costs for %d rows", g.Value.Rows(), signal.Rows())
	}
	return ad.Sub(signal, ad.StopGradient(g.Value)), nil, nil, nil
}

// findTrainer returns the trainer named name, or an error naming the
// known ones.
func findTrainer(name string) (trainerSpec, error) {
	for _, t := range trainers {
		if t.name == name {
			return t, nil
		}
	}
	return trainerSpec{}, fmt.Errorf("unknown -trainer %q; use one of %s", name, trainerNames())
}

func trainerNames() string {
	names := make([]string, len(trainers))
	for i, t := range trainers {
		names[i] = t.name
	}
	return strings.Join(names, ", ")
}

// trainerHelp is the -trainer flag's usage.
func trainerHelp() string {
	var b strings.Builder
	b.WriteString("training method:")
	for _, t := range trainers {
		fmt.Fprintf(&b, "\n  %-14s %s", t.name, t.help)
	}
	return b.String()
}
