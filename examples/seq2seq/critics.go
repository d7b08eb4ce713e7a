package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/backpropq/backpropq/q"
)

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
