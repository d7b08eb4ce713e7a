package main

import (
	"fmt"
	"io"
	"sort"

	"github.com/backpropq/backpropq/infer"
	"github.com/backpropq/backpropq/q"
)

// criticsCheck reports a -critics flag given with an estimator that
// learns no critics, or outside training.
func criticsCheck(o options) error {
	if o.critics == "" {
		return nil
	}
	if o.mode != "train" {
		return fmt.Errorf("-critics %s: only in -mode train", o.critics)
	}
	spec, err := findEstimator(firstName(o.estimator))
	if err != nil {
		return err
	}
	if !spec.critics {
		return fmt.Errorf("-critics %s: estimator %s learns no critics (only the bpq estimators do)", o.critics, spec.name)
	}
	return nil
}

// criticsOf returns the critics of est, or an error when it has none.
func criticsOf(est infer.Estimator) (*q.Set, error) {
	h, ok := est.(infer.CriticHolder)
	if !ok || h.QCritics() == nil {
		return nil, fmt.Errorf("-critics: estimator %T learns no critics", est)
	}
	return h.QCritics().Set, nil
}

// criticFit averages, per latent layer, the critics' squared TD error,
// the variance of the return R and the variance of the learning signal
// of the last steps of a run: how much of the return the critics explain,
// and what the estimator leaves.
type criticFit struct {
	addrs []string
	sums  map[string]*[4]float64 // TD error, return var, signal var, steps
}

// add records one step's site metrics.
func (f *criticFit) add(m infer.Metrics) {
	if f.sums == nil {
		f.sums = map[string]*[4]float64{}
	}
	for _, sm := range m.Sites {
		if !sm.HasReturnVar {
			continue
		}
		acc, ok := f.sums[sm.Addr]
		if !ok {
			acc = new([4]float64)
			f.sums[sm.Addr] = acc
			f.addrs = append(f.addrs, sm.Addr)
		}
		acc[0] += sm.TDError // 0 for a layer without critics
		acc[1] += sm.ReturnVar
		acc[2] += sm.SignalVar
		acc[3]++
	}
}

// print writes the averages, one line per layer (a TD error of 0 for a
// layer whose costs are all direct, which has no critic).
func (f *criticFit) print(out io.Writer) {
	sort.Strings(f.addrs)
	for _, a := range f.addrs {
		acc := f.sums[a]
		n := acc[3]
		fmt.Fprintf(out, "critic fit %s over the last %.0f steps: mean squared TD error %.4g, return variance %.4g, learning signal variance %.4g\n",
			a, n, acc[0]/n, acc[1]/n, acc[2]/n)
	}
}
