package nn

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"

	"gonum.org/v1/gonum/mat"
)

// Store holds parameters keyed by name. The zero value is an empty store
// ready to use. A Store is safe for concurrent use; the values and
// gradients of its parameters are not protected by it.
type Store struct {
	mu     sync.Mutex
	params map[string]*Param
	// journal lists the store's changes in order, for [Store.Rollback].
	journal []change
}

// change is one entry the store added or replaced: the entry it replaced
// (nil for a new name) and the name the added parameter had before the
// store renamed it.
type change struct {
	name     string
	p, old   *Param
	origName string
}

// Mark is a point in a store's history, for [Store.Rollback].
type Mark int

// ErrShape is wrapped by the errors of [Store.Param] and [Store.Register]
// when the store holds a parameter of the name with another shape.
var ErrShape = errors.New("a parameter of that name has another shape")

// shapeError is an error that is [ErrShape].
type shapeError string

func (e shapeError) Error() string { return string(e) }

func (e shapeError) Is(target error) bool { return target == ErrShape }

// NewStore returns an empty store.
func NewStore() *Store { return &Store{} }

// Param returns the parameter called name, creating it with shape
// [rows x cols] and values from init (drawing from rng) if the store has
// none of that name. It returns an error if the store's parameter has
// another shape, or if name is empty, the shape is not positive or init is
// nil when the parameter must be created.
func (s *Store) Param(name string, rows, cols int, init Initializer, rng *rand.Rand) (*Param, error) {
	if name == "" {
		return nil, errors.New("nn: Store.Param: empty parameter name")
	}
	if rows <= 0 || cols <= 0 {
		return nil, fmt.Errorf("nn: parameter %q: invalid shape [%dx%d]", name, rows, cols)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.params[name]; p != nil {
		if r, c := p.Value.Dims(); r != rows || c != cols {
			return nil, shapeError(fmt.Sprintf("nn: parameter %q: requested shape [%dx%d] but the store holds [%dx%d]", name, rows, cols, r, c))
		}
		return p, nil
	}
	if init == nil {
		return nil, fmt.Errorf("nn: parameter %q: nil initializer", name)
	}
	m := mat.NewDense(rows, cols, nil)
	init.Init(m, rng)
	p := NewParam(name, m)
	s.put(p, name)
	return p, nil
}

// put makes p the entry of its name and journals the change; origName is
// the name p had before the store named it. The caller holds the lock.
func (s *Store) put(p *Param, origName string) {
	if s.params == nil {
		s.params = make(map[string]*Param)
	}
	s.journal = append(s.journal, change{name: p.Name, p: p, old: s.params[p.Name], origName: origName})
	s.params[p.Name] = p
}

// Mark returns the store's current point in history. A caller that may
// have to undo what follows (a training step that can fail) takes a mark
// before and calls [Store.Rollback] or [Store.Commit] after.
func (s *Store) Mark() Mark {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Mark(len(s.journal))
}

// Rollback undoes every entry added since m, newest first: a parameter
// that [Store.Param], [Store.Register] or a checkpoint load created is
// removed, an entry that one replaced is put back, and a layer's
// parameter that Register renamed gets its own name back (so registering
// the layer again gives the same names) and a zero gradient. Values of
// parameters that were already in the store at m are not journaled:
// Rollback does not restore them.
func (s *Store) Rollback(m Mark) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.journal) - 1; i >= int(m) && i >= 0; i-- {
		c := s.journal[i]
		if c.old != nil {
			s.params[c.name] = c.old
		} else {
			delete(s.params, c.name)
		}
		c.p.Name = c.origName
		c.p.ZeroGrad()
	}
	s.journal = s.journal[:min(int(m), len(s.journal))]
}

// Since returns the names of the parameters added since m (not those
// that replaced an entry of the same name), in the order they were added.
func (s *Store) Since(m Mark) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for _, c := range s.journal[min(max(int(m), 0), len(s.journal)):] {
		if c.old == nil {
			names = append(names, c.name)
		}
	}
	return names
}

// Commit forgets the history, so that the store keeps no reference to the
// entries it replaced; marks taken before are no longer valid.
func (s *Store) Commit() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.journal = nil
}

// Get returns the parameter called name, or nil.
func (s *Store) Get(name string) *Param {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.params[name]
}

// Len returns the number of parameters.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.params)
}

// Params returns the parameters sorted by name, in a new slice.
func (s *Store) Params() []*Param {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sorted()
}

// AppendParams appends the parameters sorted by name to dst and returns
// the extended slice; with a dst of enough capacity it allocates nothing.
func (s *Store) AppendParams(dst []*Param) []*Param {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.appendSorted(dst)
}

func (s *Store) sorted() []*Param {
	return s.appendSorted(make([]*Param, 0, len(s.params)))
}

func (s *Store) appendSorted(dst []*Param) []*Param {
	n := len(dst)
	for _, p := range s.params {
		dst = append(dst, p)
	}
	slices.SortFunc(dst[n:], func(a, b *Param) int { return strings.Compare(a.Name, b.Name) })
	return dst
}

// ZeroGrad sets the gradient of every parameter to zero.
func (s *Store) ZeroGrad() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.params {
		p.ZeroGrad()
	}
}

// Register adds the parameters of l to the store under prefix + "/" +
// their name, and renames each parameter to that full name, which keys it
// in optimizers and checkpoints from then on.
//
// If the store already holds a parameter of a full name (created by
// [Store.Param] or loaded from a checkpoint, say), Register checks that
// the shapes agree, copies the store's value into the layer's parameter
// and makes the layer's parameter the store's entry; whoever held the old
// entry keeps a parameter the store no longer trains. A parameter the
// store already holds (the same *Param, from an earlier Register of the
// same or another layer) is left as it is, which is how weights are
// shared. Register changes nothing if it returns an error: for an empty
// prefix, a nil parameter, two parameters of one full name, or a shape
// mismatch.
func (s *Store) Register(prefix string, l Layer) error {
	if prefix == "" {
		return errors.New("nn: Store.Register: empty prefix")
	}
	type entry struct {
		p, old *Param
		full   string
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var plan []entry
	seen := make(map[string]bool)
	for _, p := range l.Params() {
		if p == nil || p.Var == nil {
			return fmt.Errorf("nn: Store.Register %q: nil parameter", prefix)
		}
		if s.params[p.Name] == p {
			continue
		}
		full := prefix + "/" + p.Name
		if seen[full] {
			return fmt.Errorf("nn: Store.Register %q: two parameters named %q", prefix, full)
		}
		seen[full] = true
		old := s.params[full]
		if old != nil {
			r, c := p.Value.Dims()
			if or, oc := old.Value.Dims(); r != or || c != oc {
				return shapeError(fmt.Sprintf("nn: parameter %q: the layer's shape is [%dx%d] but the store holds [%dx%d]", full, r, c, or, oc))
			}
		}
		plan = append(plan, entry{p: p, old: old, full: full})
	}
	for _, e := range plan {
		if e.old != nil {
			e.p.Value.Copy(e.old.Value)
		}
		orig := e.p.Name
		e.p.Name = e.full
		s.put(e.p, orig)
	}
	return nil
}
