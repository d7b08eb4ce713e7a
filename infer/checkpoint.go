package infer

import (
	"bytes"
	"fmt"
	"io"

	"github.com/backpropq/backpropq/internal/ckpt"
	"github.com/backpropq/backpropq/nn"
)

// Checkpoint sections owned by this package, next to nn's "nn.params" and
// "nn.optimizer".
const (
	sectionSVI       = "infer.svi"
	sectionEstimator = "infer.estimator/"
	sviStateVersion  = 1
)

// SaveCheckpoint writes everything a resumed run needs to path,
// atomically: the parameters of Params (the estimators' included), the
// optimizer's state, each [Stateful] estimator's state and the step count
// and seed that determine the random numbers to come. A run loaded from it
// continues bit for bit as the saved one would have.
func (s *SVI) SaveCheckpoint(path string) error {
	sections, err := s.sections()
	if err != nil {
		return err
	}
	if err := ckpt.WriteFile(path, sections); err != nil {
		return fmt.Errorf("infer: SVI: save %s: %w", path, err)
	}
	return nil
}

// LoadCheckpoint restores what SaveCheckpoint wrote to path. It checks the
// whole file first and changes nothing when it returns an error (a
// missing, truncated or corrupted file, a parameter of another shape, an
// optimizer of another kind, estimator state that does not decode, a
// Stateful estimator whose state the file lacks).
func (s *SVI) LoadCheckpoint(path string) error {
	sections, err := ckpt.ReadFile(path)
	if err != nil {
		return fmt.Errorf("infer: SVI: load %s: %w", path, err)
	}
	if err := s.load(sections); err != nil {
		return fmt.Errorf("infer: SVI: load %s: %w", path, err)
	}
	return nil
}

// EncodeCheckpoint writes the checkpoint of SaveCheckpoint to w.
func (s *SVI) EncodeCheckpoint(w io.Writer) error {
	sections, err := s.sections()
	if err != nil {
		return err
	}
	return ckpt.Encode(w, sections)
}

// DecodeCheckpoint restores a checkpoint written by EncodeCheckpoint, as
// LoadCheckpoint does.
func (s *SVI) DecodeCheckpoint(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("infer: SVI: %w", err)
	}
	sections, err := ckpt.Decode(data)
	if err != nil {
		return fmt.Errorf("infer: SVI: %w", err)
	}
	if err := s.load(sections); err != nil {
		return fmt.Errorf("infer: SVI: %w", err)
	}
	return nil
}

// sections returns the checkpoint's sections.
func (s *SVI) sections() (map[string][]byte, error) {
	if s.Params == nil {
		return nil, fmt.Errorf("infer: SVI: no parameter store")
	}
	if err := s.registerEstimatorParams(); err != nil {
		return nil, err
	}
	sections, err := nn.MarshalSections(s.Params, s.Optimizer)
	if err != nil {
		return nil, fmt.Errorf("infer: SVI: %w", err)
	}
	var e ckpt.Encoder
	e.Uint32(sviStateVersion)
	e.Uint64(s.Seed)
	e.Int64(s.step)
	e.Uint32(uint32(indicator(s.warm)))
	sections[sectionSVI] = e.Bytes()
	keys, ests := s.Estimators.stateful()
	for i, st := range ests {
		data, err := st.MarshalState()
		if err != nil {
			return nil, fmt.Errorf("infer: SVI: estimator %s: %w", keys[i], err)
		}
		sections[sectionEstimator+keys[i]] = bytes.Clone(data)
	}
	return sections, nil
}

// load applies sections, all or nothing.
func (s *SVI) load(sections map[string][]byte) error {
	if s.Params == nil {
		return fmt.Errorf("no parameter store")
	}
	if err := s.registerEstimatorParams(); err != nil {
		return err
	}
	raw, ok := sections[sectionSVI]
	if !ok {
		return fmt.Errorf("no %q section", sectionSVI)
	}
	d := ckpt.NewDecoder(sectionSVI, raw)
	version := d.Uint32()
	seed := d.Uint64()
	step := d.Int64()
	warm := d.Uint32()
	if err := d.Finish(); err != nil {
		return err
	}
	if version != sviStateVersion {
		return fmt.Errorf("section %q: version %d, want %d", sectionSVI, version, sviStateVersion)
	}
	if step < 0 || warm > 1 {
		return fmt.Errorf("section %q: malformed (step %d)", sectionSVI, step)
	}
	apply, err := nn.PrepareLoad(sections, s.Params, s.Optimizer)
	if err != nil {
		return err
	}
	keys, ests := s.Estimators.stateful()
	old := make([][]byte, len(ests))
	for i, st := range ests {
		if _, ok := sections[sectionEstimator+keys[i]]; !ok {
			return fmt.Errorf("no state for estimator %s", keys[i])
		}
		if old[i], err = st.MarshalState(); err != nil {
			return fmt.Errorf("estimator %s: %w", keys[i], err)
		}
		old[i] = bytes.Clone(old[i])
	}
	restore := func(n int) {
		for i := 0; i < n; i++ {
			// The state was produced by the estimator itself.
			_ = ests[i].UnmarshalState(old[i])
		}
	}
	for i, st := range ests {
		if err := st.UnmarshalState(sections[sectionEstimator+keys[i]]); err != nil {
			restore(i)
			return fmt.Errorf("estimator %s: %w", keys[i], err)
		}
	}
	if err := apply(); err != nil {
		restore(len(ests))
		return err
	}
	s.Seed, s.step, s.warm = seed, step, warm == 1
	return nil
}
