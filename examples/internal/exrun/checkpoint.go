package exrun

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/backpropq/backpropq/infer"
	"github.com/backpropq/backpropq/q"
)

// SaveCheckpoint writes svi's checkpoint to path atomically, with meta
// encoded as JSON in an extra section of the given name (a command's own
// settings, which it reads back on resume).
func SaveCheckpoint(path string, svi *infer.SVI, section string, meta any) error {
	sections, err := svi.Sections()
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	raw, err := json.Marshal(meta)
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	sections[section] = raw
	return infer.WriteCheckpoint(path, sections)
}

// ReadCheckpoint reads the checkpoint at path for a resumed run: it
// returns the file's sections (for [infer.SVI.Restore]) and decodes the
// JSON of the named section (the command's own settings, as
// [SaveCheckpoint] wrote them) into meta. A file without that section is
// not a checkpoint of this command.
func ReadCheckpoint(path, section string, meta any) (map[string][]byte, error) {
	sections, err := infer.ReadCheckpoint(path)
	if err != nil {
		return nil, fmt.Errorf("resume %s: %w", path, err)
	}
	raw, ok := sections[section]
	if !ok {
		return nil, fmt.Errorf("resume %s: not a checkpoint of this command (no %s section)", path, section)
	}
	if err := json.Unmarshal(raw, meta); err != nil {
		return nil, fmt.Errorf("resume %s: %w", path, err)
	}
	return sections, nil
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
