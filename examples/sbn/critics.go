package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

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
	b, ok := est.(*infer.BackpropQ)
	if !ok || b.Critics == nil {
		return nil, fmt.Errorf("-critics: estimator %T learns no critics", est)
	}
	return b.Critics, nil
}

// loadCritics loads the critics file into set when it exists. A critic
// whose saved scope layout differs from the model's is an error, at load
// or at the step that first sees its site, unless reinit is set: it then
// starts afresh. It reports whether a file was read.
func loadCritics(path string, set *q.Set, reinit bool) (bool, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err := q.Load(path, set, q.LoadOptions{Reinit: reinit}); err != nil {
		return false, fmt.Errorf("-critics %s: %w", path, err)
	}
	return true, nil
}

// saveCritics writes set to path atomically.
func saveCritics(path string, set *q.Set) error {
	if err := q.Save(path, set); err != nil {
		return fmt.Errorf("-critics %s: %w", path, err)
	}
	return nil
}
