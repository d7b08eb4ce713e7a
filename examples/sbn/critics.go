package main

import (
	"fmt"

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
