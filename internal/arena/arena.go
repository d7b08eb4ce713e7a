// Package arena hands out records that live as long as the tensors of one
// run of a tape: the sites, traces and graphs that ppl, trace, vi and infer
// make on every run. Their memory is reused once the tape is reset, so a
// training loop that resets its tape every step allocates none of them in
// its steady state. Like the tape's tensors, a record must not be used
// after the tape is reset.
//
// The package is internal although the library's packages, not only the
// examples, use it: a record's lifetime is a contract among the packages
// that hand records to each other, not an API for models.
package arena

import "github.com/backpropq/backpropq/ad"

// Slab holds the records of type T of one tape.
type Slab[T any] struct {
	gen   uint64
	items []*T
	n     int
}

// Get returns a record of the tape's current generation. It is not
// cleared: it holds what an earlier generation left in it (or the zero
// value), so that its owner can keep the capacity of its slices and maps.
func (s *Slab[T]) Get(tp *ad.Tape) *T {
	if g := tp.Generation(); g != s.gen {
		s.gen, s.n = g, 0
	}
	if s.n == len(s.items) {
		s.items = append(s.items, new(T))
	}
	p := s.items[s.n]
	s.n++
	return p
}

// New returns a zeroed record of the tape's current generation.
func (s *Slab[T]) New(tp *ad.Tape) *T {
	p := s.Get(tp)
	var zero T
	*p = zero
	return p
}

// Key names the slab of type T on every tape.
type Key[T any] struct{ key ad.LocalKey }

// NewKey returns a key for slabs of T. Make keys once, in package
// variables.
func NewKey[T any]() Key[T] { return Key[T]{ad.NewLocalKey()} }

// Of returns tp's slab of k.
func (k Key[T]) Of(tp *ad.Tape) *Slab[T] {
	return tp.Local(k.key, newSlab[T]).(*Slab[T])
}

// New returns a zeroed record of tp's current generation, or a new
// record when tp is nil.
func (k Key[T]) New(tp *ad.Tape) *T {
	if tp == nil {
		return new(T)
	}
	return k.Of(tp).New(tp)
}

// Get returns a record of tp's current generation, as [Slab.Get], or a
// new record when tp is nil.
func (k Key[T]) Get(tp *ad.Tape) *T {
	if tp == nil {
		return new(T)
	}
	return k.Of(tp).Get(tp)
}

func newSlab[T any]() any { return new(Slab[T]) }
