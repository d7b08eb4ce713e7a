package q

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/backpropq/backpropq/internal/ckpt"
)

// Section is the name of the checkpoint section that holds a [Set]'s
// critics; [Set.MarshalSections] and [Set.PrepareLoad] let a training
// loop's checkpoint carry it beside the parameters.
const Section = "q.critics"

// sectionVersion is the version of section [Section] that
// [Set.MarshalSections] writes: version 2 adds, after each critic, the
// optimizer state of a Linear or MLP critic and the slow-tracking copy,
// and each NetCritic's output normalization ([NetCritic.NormalizeTargets]).
// Version 1 sections are read with a fresh optimizer and target copy.
const sectionVersion = 2

// saved is a critic read from a file, awaiting its key's first sight.
type saved struct {
	layout Layout
	critic Critic
	// slow is the saved slow-tracking copy, nil when none was saved.
	slow *slowTarget
}

// LoadOptions configure [Load].
type LoadOptions struct {
	// Reinit re-initializes, instead of failing, a critic whose saved
	// scope layout differs from the one the model now has: the saved
	// weights are dropped and a fresh critic is created on first sight.
	Reinit bool
}

// Save writes the critics of s, keyed by address and cost sources with
// each critic's scope layout, to path atomically (on error the previous
// file, if any, is unchanged). Loaded critics not yet used are saved too.
// The Adam state of Linear and MLP critics and the slow-tracking copies
// (appendix 4.3) are saved with them, so that training continues exactly
// where it stopped. A file written before they were saved (section
// version 1) loads with a fresh Adam state and a target copy equal to the
// loaded weights. A critic that is not one of the package's kinds is an
// error.
func Save(path string, s *Set) error {
	sections, err := s.MarshalSections()
	if err != nil {
		return fmt.Errorf("q: save %q: %w", path, err)
	}
	if err := ckpt.WriteFile(path, sections); err != nil {
		return fmt.Errorf("q: save %q: %w", path, err)
	}
	return nil
}

// Load reads the critics that [Save] wrote to path into s. It checks the
// whole file first and changes nothing on error. A saved critic whose key
// s already holds replaces it when the layouts agree; otherwise Load fails
// (or, with opts.Reinit, drops both so the key starts afresh). Saved
// critics of keys s has not seen yet wait for their first sight, so a model
// that grew new sites reuses the critics it can; a layout that changed is
// then reported at that sight (or re-initialized with opts.Reinit).
func Load(path string, s *Set, opts LoadOptions) error {
	sections, err := ckpt.ReadFile(path)
	if err != nil {
		return fmt.Errorf("q: load %q: %w", path, err)
	}
	apply, err := s.PrepareLoad(sections, opts)
	if err != nil {
		return fmt.Errorf("q: load %q: %w", path, err)
	}
	apply()
	return nil
}

// MarshalSections encodes the critics as the checkpoint section [Section].
func (s *Set) MarshalSections() (map[string][]byte, error) {
	type item struct {
		key    string
		critic Critic
		slow   *slowTarget
	}
	var items []item
	for k, e := range s.critics {
		items = append(items, item{k, e.critic, e.slow})
	}
	for k, p := range s.pending {
		if _, ok := s.critics[k]; !ok {
			items = append(items, item{k, p.critic, p.slow})
		}
	}
	slices.SortFunc(items, func(a, b item) int {
		switch {
		case a.key < b.key:
			return -1
		case a.key > b.key:
			return 1
		}
		return 0
	})
	var e ckpt.Encoder
	e.Uint32(sectionVersion)
	e.Uint32(uint32(len(items)))
	for _, it := range items {
		e.String(it.key)
		encodeLayout(&e, it.critic.Layout())
		if err := encodeCritic(&e, it.critic); err != nil {
			return nil, fmt.Errorf("critic %q: %w", it.key, err)
		}
		encodeOptimizer(&e, it.critic)
		if err := encodeSlow(&e, it.slow); err != nil {
			return nil, fmt.Errorf("critic %q: slow-tracking copy: %w", it.key, err)
		}
	}
	return map[string][]byte{Section: e.Bytes()}, nil
}

// PrepareLoad decodes and checks the section [Section] of sections against
// s, changing nothing, and returns a function that installs the critics as
// [Load] describes. A missing section is an error.
func (s *Set) PrepareLoad(sections map[string][]byte, opts LoadOptions) (apply func(), err error) {
	data, ok := sections[Section]
	if !ok {
		return nil, fmt.Errorf("no section %q", Section)
	}
	d := ckpt.NewDecoder(Section, data)
	version := d.Uint32()
	if d.Err() == nil && (version < 1 || version > sectionVersion) {
		return nil, fmt.Errorf("section %q: version %d, want 1 to %d", Section, version, sectionVersion)
	}
	n := d.Count(12)
	loaded := map[string]*saved{}
	var order []string
	for range n {
		key := d.String()
		layout := decodeLayout(d)
		c := decodeCritic(d, version, key, layout)
		var slow *slowTarget
		if version >= 2 && d.Err() == nil {
			decodeOptimizer(d, key, c)
			slow = decodeSlow(d, key, layout, c)
		}
		if d.Err() != nil {
			break
		}
		if _, dup := loaded[key]; dup {
			d.Fail("critic %q saved twice", key)
			break
		}
		loaded[key] = &saved{layout: layout, critic: c, slow: slow}
		order = append(order, key)
	}
	if err := d.Finish(); err != nil {
		return nil, err
	}
	for _, key := range order {
		p := loaded[key]
		if e, ok := s.critics[key]; ok && e.critic.Layout().String() != p.layout.String() && !opts.Reinit {
			return nil, fmt.Errorf("critic %q: saved for scope layout %q, the model now has %q",
				key, p.layout.String(), e.critic.Layout().String())
		}
	}
	return func() {
		s.reinit = opts.Reinit
		for _, key := range order {
			p := loaded[key]
			delete(s.created, key)
			if net, ok := p.critic.(*NetCritic); ok {
				net.tape = newTape()
			}
			if e, ok := s.critics[key]; ok {
				if e.critic.Layout().String() == p.layout.String() {
					s.Put(key, p.critic)
					if p.slow != nil && s.cfg.SlowTarget > 0 {
						s.critics[key].slow = p.slow.restored(s.cfg.SlowTarget)
					}
				} else {
					delete(s.critics, key) // Reinit: a fresh critic on next sight
				}
				continue
			}
			s.pending[key] = p
		}
	}, nil
}

// MarshalState returns the critics as checkpoint bytes (the container of
// [Save], in memory), for an estimator's state in a training checkpoint.
func (s *Set) MarshalState() ([]byte, error) {
	sections, err := s.MarshalSections()
	if err != nil {
		return nil, fmt.Errorf("q: %w", err)
	}
	var buf bytes.Buffer
	if err := ckpt.Encode(&buf, sections); err != nil {
		return nil, fmt.Errorf("q: %w", err)
	}
	return buf.Bytes(), nil
}

// UnmarshalState loads critics from bytes that [Set.MarshalState] returned,
// as [Load] does with zero [LoadOptions]: it checks everything first and
// changes nothing on error.
func (s *Set) UnmarshalState(data []byte) error {
	sections, err := ckpt.Decode(data)
	if err != nil {
		return fmt.Errorf("q: %w", err)
	}
	apply, err := s.PrepareLoad(sections, LoadOptions{})
	if err != nil {
		return fmt.Errorf("q: %w", err)
	}
	apply()
	return nil
}
