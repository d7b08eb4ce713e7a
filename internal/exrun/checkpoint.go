package exrun

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/backpropq/backpropq/infer"
	"github.com/backpropq/backpropq/internal/ckpt"
	"github.com/backpropq/backpropq/q"
)

// SaveCheckpoint writes svi's checkpoint to path atomically, with meta
// encoded as JSON in an extra section of the given name (a command's own
// settings, which it reads back on resume).
func SaveCheckpoint(path string, svi *infer.SVI, section string, meta any) error {
	var buf bytes.Buffer
	if err := svi.EncodeCheckpoint(&buf); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	sections, err := ckpt.Decode(buf.Bytes())
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	raw, err := json.Marshal(meta)
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	sections[section] = raw
	if err := ckpt.WriteFile(path, sections); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	return nil
}

// LoadCritics loads the critics file at path into set when the file
// exists, and reports whether it did. A critic whose saved scope layout
// differs from the model's is an error, at load or at the step that first
// sees its site, unless reinit is set: it then starts afresh.
func LoadCritics(path string, set *q.Set, reinit bool) (bool, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err := q.Load(path, set, q.LoadOptions{Reinit: reinit}); err != nil {
		return false, fmt.Errorf("-critics %s: %w", path, err)
	}
	return true, nil
}

// SaveCritics writes set to path atomically.
func SaveCritics(path string, set *q.Set) error {
	if err := q.Save(path, set); err != nil {
		return fmt.Errorf("-critics %s: %w", path, err)
	}
	return nil
}
