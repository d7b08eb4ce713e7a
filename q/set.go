package q

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strings"
)

// Kind selects the critic implementation a [Set] creates.
type Kind uint8

const (
	// Auto creates a [Tabular] critic for a discrete layout of at most
	// [Config].MaxCells cells and an MLP otherwise.
	Auto Kind = iota
	// TabularKind creates [Tabular] critics.
	TabularKind
	// LinearKind creates linear critics ([NewLinear]).
	LinearKind
	// MLPKind creates MLP critics ([NewMLP]).
	MLPKind
)

// Config configures a [Set].
type Config struct {
	Kind Kind
	// Hidden are the hidden sizes of MLP critics; default [32].
	Hidden []int
	// LR is the Adam learning rate of Linear and MLP critics (default
	// 0.01) and the constant step size of Tabular ones (0: 1/n averages).
	LR float64
	// MaxCells bounds the cells of a layout Auto serves with a Tabular
	// critic; default 4096.
	MaxCells int
	// Templates are address templates such as "y[*]": one critic serves
	// every site whose [Template] is listed, with the indices as an input
	// feature.
	Templates []string
	// Normalize makes Linear and MLP critics learn in normalized units
	// ([NetCritic.NormalizeTargets]).
	Normalize bool
	// SlowTarget, when positive, is the alpha of the slow-tracking target
	// (appendix 4.3): update targets read a copy of each critic whose
	// weights slowly track the learned ones.
	SlowTarget float64
	// Seed determines the initial weights of Linear and MLP critics: the
	// critic of a key draws them from a source seeded by Seed and the key
	// alone, so that they do not depend on the step, or the goroutine, in
	// which the key is first seen, and a resumed run creates the critics
	// the uninterrupted run would have.
	Seed uint64
}

// entry is one critic of a set with its slow-tracking state.
type entry struct {
	critic Critic
	slow   *slowTarget
}

// Set holds the critics of a model, keyed by address and cost sources
// ([Set.Key]) and created on first sight of a key. A Set is not safe for
// concurrent use.
type Set struct {
	cfg       Config
	critics   map[string]*entry
	templates map[string]bool
	pending   map[string]*saved // loaded, awaiting first sight
	reinit    bool
	// created holds the critics that Evaluate created for keys seen for
	// the first time, until an update installs them: later evaluations
	// share them, so that evaluations of several traces (the chunks of a
	// step) see one critic per key, the one the first evaluation drew.
	created map[string]*entry
}

// NewSet returns an empty set of critics.
func NewSet(cfg Config) *Set {
	if cfg.LR == 0 && cfg.Kind != TabularKind {
		cfg.LR = 0.01
	}
	if cfg.MaxCells == 0 {
		cfg.MaxCells = 4096
	}
	if cfg.Hidden == nil {
		cfg.Hidden = []int{32}
	}
	s := &Set{cfg: cfg, critics: map[string]*entry{}, templates: map[string]bool{}, pending: map[string]*saved{}, created: map[string]*entry{}}
	for _, t := range cfg.Templates {
		s.templates[t] = true
	}
	return s
}

// Config returns the set's configuration.
func (s *Set) Config() Config { return s.cfg }

// templated reports whether site addr is served by a template.
func (s *Set) templated(addr string) bool {
	t, idx := Template(addr)
	return len(idx) > 0 && s.templates[t]
}

// Key returns the key of node nd's critic: the site's address (templated
// when a template serves it), a bar and the node's cost sources (each
// templated likewise, without repeats).
//
// A template's critic serves the Q-nodes of every index: its layout is the
// union of theirs, with scope sites named relative to the node's indices
// ("y[*]@-1" for the previous y), and a node without some field (y[0] has no
// previous y) reads zeros there, the index feature telling the cases
// apart. Since sources are templated too, a template is meant for merged
// networks: two Q-nodes of one site that map to one key are an error.
func (s *Set) Key(nd *Node) string {
	site := nd.Site
	tmpl := s.templated(site)
	if tmpl {
		site, _ = Template(site)
	}
	var srcs []string
	for _, f := range nd.Sources {
		if tmpl {
			f, _ = Template(f)
		}
		if !slices.Contains(srcs, f) {
			srcs = append(srcs, f)
		}
	}
	return site + "|" + strings.Join(srcs, ",")
}

// FieldName returns the name of the layout field in which the critic of
// node nd reads the value of the scope site at addr: addr itself, or for a
// critic that serves a template, addr relative to the node's indices
// ("y[*]@-1" for y[2] in the node of y[3]).
func (s *Set) FieldName(nd *Node, addr string) string {
	if !s.templated(nd.Site) {
		return addr
	}
	_, idx := Template(nd.Site)
	return relativeName(addr, idx)
}

// Keys returns the keys of the set's critics, sorted, those loaded and
// awaiting first sight included.
func (s *Set) Keys() []string {
	var k []string
	for key := range s.critics {
		k = append(k, key)
	}
	for key := range s.pending {
		if _, ok := s.critics[key]; !ok {
			k = append(k, key)
		}
	}
	slices.Sort(k)
	return k
}

// Critic returns the critic of key (a loaded one awaiting first sight
// included), or nil. The critic aliases the set's.
func (s *Set) Critic(key string) Critic {
	if e, ok := s.critics[key]; ok {
		return e.critic
	}
	if p, ok := s.pending[key]; ok {
		return p.critic
	}
	return nil
}

// Put installs c as the critic of key, replacing any other.
func (s *Set) Put(key string, c Critic) {
	e := &entry{critic: c}
	if s.cfg.SlowTarget > 0 {
		e.slow = newSlowTarget(c, s.cfg.SlowTarget)
	}
	s.critics[key] = e
	delete(s.pending, key)
	delete(s.created, key)
}

// newCritic creates the critic of a layout.
func (s *Set) newCritic(key string, layout Layout) (Critic, error) {
	kind := s.cfg.Kind
	if kind == Auto {
		kind = MLPKind
		if layout.Discrete() && cells(layout) <= float64(s.cfg.MaxCells) {
			kind = TabularKind
		}
	}
	switch kind {
	case TabularKind:
		t, err := NewTabular(layout, s.cfg.LR)
		if err != nil {
			return nil, fmt.Errorf("q: critic %q: %w", key, err)
		}
		return t, nil
	case LinearKind, MLPKind:
		rng := criticRand(s.cfg.Seed, key)
		var n *NetCritic
		if kind == LinearKind {
			n = NewLinear(layout, s.cfg.LR, rng)
		} else {
			n = NewMLP(layout, s.cfg.Hidden, s.cfg.LR, rng)
		}
		if s.cfg.Normalize {
			n.NormalizeTargets()
		}
		return n, nil
	}
	return nil, fmt.Errorf("q: critic %q: unknown kind %d", key, kind)
}

// criticRand returns the random source of the initial weights of the
// critic of key: a PCG stream seeded by seed and the FNV-1a hash of key.
func criticRand(seed uint64, key string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(key))
	return rand.New(rand.NewPCG(seed, h.Sum64()))
}

// cells returns the number of cells of a tabular critic of l.
func cells(l Layout) float64 {
	n := 1.0
	for _, f := range l.Fields {
		switch f.Kind {
		case Binary:
			for range f.Width {
				n *= 2
			}
		case OneHot:
			n *= float64(f.Width)
		case Index:
			n *= maxIndex
		}
	}
	return n
}

// lookup returns the entry of key for layout without changing s: the
// set's own, or a new one (a loaded critic awaiting first sight, or a
// fresh critic) that [Values.install] adds to s when the values are used
// for an update.
func (s *Set) lookup(key string, layout Layout, fresh map[string]*entry) (*entry, error) {
	if e, ok := s.critics[key]; ok {
		if got := e.critic.Layout(); !got.Equal(layout) {
			return nil, fmt.Errorf("q: critic %q: scope layout changed from %q to %q", key, got, layout)
		}
		return e, nil
	}
	if e, ok := fresh[key]; ok {
		if got := e.critic.Layout(); !got.Equal(layout) {
			return nil, fmt.Errorf("q: critic %q: nodes of one key have scope layouts %q and %q", key, got, layout)
		}
		return e, nil
	}
	if e, ok := s.created[key]; ok && e.critic.Layout().Equal(layout) {
		fresh[key] = e
		return e, nil
	}
	var c Critic
	var slow *slowTarget
	if p, ok := s.pending[key]; ok {
		if p.layout.String() == layout.String() {
			c = p.critic.Clone()
			if p.slow != nil && s.cfg.SlowTarget > 0 {
				slow = p.slow.restored(s.cfg.SlowTarget)
			}
		} else if !s.reinit {
			return nil, fmt.Errorf("q: critic %q: saved for scope layout %q, the model now has %q",
				key, p.layout.String(), layout.String())
		}
	}
	if c == nil {
		var err error
		if c, err = s.newCritic(key, layout); err != nil {
			return nil, err
		}
	}
	e := &entry{critic: c, slow: slow}
	if s.cfg.SlowTarget > 0 && slow == nil {
		e.slow = newSlowTarget(c, s.cfg.SlowTarget)
	}
	fresh[key] = e
	s.created[key] = e
	return e, nil
}
