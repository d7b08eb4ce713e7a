package infer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/backpropq/backpropq/internal/ckpt"
	"github.com/backpropq/backpropq/nn"
)

// Checkpoint sections owned by this package, next to nn's "nn.params" and
// "nn.optimizer". Version 2 of the SVI section adds the estimators of the
// setup, by key and type.
const (
	sectionSVI       = "infer.svi"
	sectionEstimator = "infer.estimator/"
	sviStateVersion  = 2
)

// estimatorParamPrefix prefixes the store names of the estimators'
// parameters (see [Stateful]).
const estimatorParamPrefix = "infer/"

// LoadOptions configure [SVI.Restore].
type LoadOptions struct {
	// WarmStart starts this run from part of a checkpoint of another
	// training setup (a smaller model, other estimators or another
	// optimizer): it copies the checkpoint's parameters into the store's
	// parameters of the same names, adds those the store lacks (for
	// parameters created on first use) and loads nothing else: the step
	// count, seed, optimizer state and estimator state stay as they are.
	// Parameters of one name must still have one shape.
	WarmStart bool
}

// SaveCheckpoint writes everything a resumed run needs to path,
// atomically: the parameters of Params (the estimators' included), the
// optimizer's state, each [Stateful] estimator's state, the estimators'
// keys and types and the step count and seed that determine the random
// numbers to come. A run loaded from it continues bit for bit as the saved
// one would have.
func (s *SVI) SaveCheckpoint(path string) error {
	sections, err := s.Sections()
	if err != nil {
		return err
	}
	return WriteCheckpoint(path, sections)
}

// LoadCheckpoint restores what SaveCheckpoint wrote to path, as
// [SVI.Restore] does with no options.
func (s *SVI) LoadCheckpoint(path string) error {
	sections, err := ReadCheckpoint(path)
	if err != nil {
		return err
	}
	if err := s.Restore(sections, LoadOptions{}); err != nil {
		return fmt.Errorf("infer: SVI: load %s: %w", path, err)
	}
	return nil
}

// EncodeCheckpoint writes the checkpoint of SaveCheckpoint to w.
func (s *SVI) EncodeCheckpoint(w io.Writer) error {
	sections, err := s.Sections()
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
	return s.Restore(sections, LoadOptions{})
}

// WriteCheckpoint writes checkpoint sections ([SVI.Sections], with any
// sections of the caller's own added) to path atomically: on error the
// previous file, if any, is unchanged.
func WriteCheckpoint(path string, sections map[string][]byte) error {
	if err := ckpt.WriteFile(path, sections); err != nil {
		return fmt.Errorf("infer: save %s: %w", path, err)
	}
	return nil
}

// ReadCheckpoint reads and checks the checkpoint file at path (its
// checksum, its framing) and returns its sections, for [SVI.Restore] and
// the caller's own sections.
func ReadCheckpoint(path string) (map[string][]byte, error) {
	sections, err := ckpt.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("infer: load %s: %w", path, err)
	}
	return sections, nil
}

// Sections returns the checkpoint of [SVI.SaveCheckpoint] as sections
// keyed by name, in a new map. A caller may add sections of its own (a
// command's settings) under names that do not start with "nn." or
// "infer."; [SVI.Restore] ignores them.
func (s *SVI) Sections() (map[string][]byte, error) {
	if s.Params == nil {
		return nil, errors.New("infer: SVI: no parameter store")
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
	setup := s.Estimators.describe()
	e.Uint32(uint32(len(setup)))
	for _, d := range setup {
		e.String(d.key)
		e.String(d.kind)
	}
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

// Restore loads checkpoint sections ([SVI.Sections], [ReadCheckpoint])
// into s, all or nothing: on error nothing has changed.
//
// Without options the checkpoint must be of this training setup, and
// Restore fails naming the first difference: an estimator of another
// type (or under another key), a parameter that one side has and the
// other lacks or that has another shape, an optimizer of another kind,
// estimator state that does not decode or is missing. A store whose
// parameters are created on first use and have not been yet takes the
// checkpoint's; the next successful step then fails, changing nothing, if
// the model creates a parameter that the checkpoint does not hold. See
// [LoadOptions] for a warm start from another setup.
func (s *SVI) Restore(sections map[string][]byte, opts LoadOptions) error {
	if err := s.restore(sections, opts); err != nil {
		return fmt.Errorf("infer: SVI: restore: %w", err)
	}
	return nil
}

// restore is Restore without the error prefix.
func (s *SVI) restore(sections map[string][]byte, opts LoadOptions) error {
	if s.Params == nil {
		return errors.New("no parameter store")
	}
	if err := s.registerEstimatorParams(); err != nil {
		return err
	}
	if opts.WarmStart {
		apply, err := nn.PrepareLoad(sections, s.Params, nil)
		if err != nil {
			return err
		}
		return apply()
	}
	st, err := decodeSVIState(sections[sectionSVI])
	if err != nil {
		return err
	}
	if err := s.Estimators.match(st.setup, sections); err != nil {
		return err
	}
	fresh := !s.hasModelParams()
	if err := nn.MatchParams(sections, s.Params, fresh); err != nil {
		return err
	}
	var pending *pendingRestore
	if fresh {
		before, err := s.Sections()
		if err != nil {
			return err
		}
		pending = &pendingRestore{mark: s.Params.Mark(), before: before}
	}
	apply, err := nn.PrepareLoad(sections, s.Params, s.Optimizer)
	if err != nil {
		return err
	}
	undo, err := s.restoreEstimators(sections)
	if err != nil {
		return err
	}
	if err := apply(); err != nil {
		undo()
		return err
	}
	s.Seed, s.step, s.warm = st.seed, st.step, st.warm
	s.pending = pending
	return nil
}

// pendingRestore is a restore into a store without the model's parameters,
// which the next step confirms: the store's history before it and the
// checkpoint of the setup before it, to undo it.
type pendingRestore struct {
	mark   nn.Mark
	before map[string][]byte
}

// sviState is the content of the SVI section.
type sviState struct {
	seed  uint64
	step  int64
	warm  bool
	setup []estimatorDesc
}

// decodeSVIState decodes the SVI section; a version 1 section has no
// setup (nil).
func decodeSVIState(raw []byte) (sviState, error) {
	if raw == nil {
		return sviState{}, fmt.Errorf("no %q section", sectionSVI)
	}
	d := ckpt.NewDecoder(sectionSVI, raw)
	version := d.Uint32()
	if d.Err() == nil && version != 1 && version != sviStateVersion {
		return sviState{}, fmt.Errorf("section %q: version %d, want at most %d", sectionSVI, version, sviStateVersion)
	}
	st := sviState{seed: d.Uint64(), step: d.Int64()}
	warm := d.Uint32()
	if version == sviStateVersion {
		st.setup = []estimatorDesc{}
		for i, n := 0, d.Count(8); i < n && d.Err() == nil; i++ {
			st.setup = append(st.setup, estimatorDesc{key: d.String(), kind: d.String()})
		}
	}
	if err := d.Finish(); err != nil {
		return sviState{}, err
	}
	if st.step < 0 || warm > 1 {
		return sviState{}, fmt.Errorf("section %q: malformed (step %d)", sectionSVI, st.step)
	}
	st.warm = warm == 1
	return st, nil
}

// restoreEstimators loads each Stateful estimator's state from sections
// and returns a function that puts the previous states back; on error it
// has put them back itself.
func (s *SVI) restoreEstimators(sections map[string][]byte) (undo func(), err error) {
	keys, ests := s.Estimators.stateful()
	old := make([][]byte, len(ests))
	for i, st := range ests {
		if _, ok := sections[sectionEstimator+keys[i]]; !ok {
			return nil, fmt.Errorf("no state for estimator %s", keys[i])
		}
		if old[i], err = st.MarshalState(); err != nil {
			return nil, fmt.Errorf("estimator %s: %w", keys[i], err)
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
			return nil, fmt.Errorf("estimator %s: %w", keys[i], err)
		}
	}
	return func() { restore(len(ests)) }, nil
}

// hasModelParams reports whether the store holds a parameter other than
// the estimators' (the model's and guide's parameters exist).
func (s *SVI) hasModelParams() bool {
	for _, p := range s.Params.Params() {
		if !strings.HasPrefix(p.Name, estimatorParamPrefix) {
			return true
		}
	}
	return false
}

// confirmRestore checks the first step after a restore into a store
// without the model's parameters (mark is the step's point in the store's
// history, err its error): the model must create no parameter that the
// checkpoint lacks and find none of another shape, or the checkpoint was
// of another model and the restore is undone.
func (s *SVI) confirmRestore(mark nn.Mark, err error) error {
	if s.pending == nil {
		return err
	}
	if err != nil && !errors.Is(err, nn.ErrShape) {
		return err
	}
	if err == nil {
		for _, name := range s.Params.Since(mark) {
			if !strings.HasPrefix(name, estimatorParamPrefix) {
				err = fmt.Errorf("infer: SVI step %d: the model created parameter %q, which the restored checkpoint does not hold", s.step, name)
				break
			}
		}
		if err == nil {
			return nil
		}
	}
	err = fmt.Errorf("%w: the checkpoint is of another model, and the restore is undone (LoadOptions.WarmStart loads part of one)", err)
	p := s.pending
	s.Params.Rollback(p.mark)
	if rerr := s.restore(p.before, LoadOptions{}); rerr != nil {
		return errors.Join(err, fmt.Errorf("infer: SVI: undo the restore: %w", rerr))
	}
	s.pending = nil
	return err
}

// estimatorDesc names the estimator of one key of an [Estimators]
// ("default", "site/<pattern>") by its Go type.
type estimatorDesc struct {
	key, kind string
}

// describe returns the estimators of e by key, Default first and then the
// patterns in order.
func (e Estimators) describe() []estimatorDesc {
	def := "unset"
	if e.Default != nil {
		def = fmt.Sprintf("%T", e.Default)
	}
	out := []estimatorDesc{{key: "default", kind: def}}
	for _, p := range e.sortedPatterns() {
		out = append(out, estimatorDesc{key: "site/" + p, kind: fmt.Sprintf("%T", e.Sites[p])})
	}
	return out
}

// match checks that a checkpoint's estimators (saved, nil for a version 1
// file, which did not record them) and its estimator state sections are
// those of e, naming the first difference.
func (e Estimators) match(saved []estimatorDesc, sections map[string][]byte) error {
	mine := e.describe()
	if saved != nil {
		for i := 0; i < max(len(mine), len(saved)); i++ {
			switch {
			case i >= len(saved):
				return fmt.Errorf("the checkpoint has no estimator %s (this setup's is %s)", mine[i].key, mine[i].kind)
			case i >= len(mine) || saved[i].key < mine[i].key:
				return fmt.Errorf("the checkpoint has estimator %s (%s), which this setup does not have", saved[i].key, saved[i].kind)
			case saved[i].key > mine[i].key:
				return fmt.Errorf("the checkpoint has no estimator %s (this setup's is %s)", mine[i].key, mine[i].kind)
			case saved[i].kind != mine[i].kind:
				return fmt.Errorf("estimator %s is %s in the checkpoint but %s in this setup", mine[i].key, saved[i].kind, mine[i].kind)
			}
		}
	}
	keys, _ := e.stateful()
	own := map[string]bool{}
	for _, k := range keys {
		own[sectionEstimator+k] = true
	}
	for _, name := range ckpt.Names(sections) {
		if strings.HasPrefix(name, sectionEstimator) && !own[name] {
			return fmt.Errorf("the checkpoint holds the state of estimator %s, which this setup does not keep", strings.TrimPrefix(name, sectionEstimator))
		}
	}
	return nil
}
