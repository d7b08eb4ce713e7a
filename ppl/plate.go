package ppl

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Frame is one plate of a run: a named independence context of Size
// members, of which the run holds Indices (a subsample), or all of them.
type Frame struct {
	// Name is the plate's full address, scopes included.
	Name string
	// Size is the number of members N of the plate.
	Size int
	// Indices are the members present in the run, in row order; nil
	// means all of them, in order.
	Indices []int

	want int // the subsample size asked for; 0 for all
}

// Len returns the number of members present in the run: len(Indices), or
// Size when the plate is not subsampled.
func (f *Frame) Len() int {
	if f.Indices == nil {
		return f.Size
	}
	return len(f.Indices)
}

// Scale returns Size/Len, the factor by which the sites and costs inside
// the plate are weighed so that a subsample's sum estimates the whole
// plate's without bias.
func (f *Frame) Scale() float64 { return float64(f.Size) / float64(f.Len()) }

// String returns "name[n/N]" for a subsampled plate, "name[N]" otherwise.
func (f *Frame) String() string {
	if f.Len() == f.Size {
		return f.Name + "[" + strconv.Itoa(f.Size) + "]"
	}
	return fmt.Sprintf("%s[%d/%d]", f.Name, f.Len(), f.Size)
}

// Stack is the plates a value or a site is inside, outermost first.
//
// Inside a stack of plates a value has P*n_1*...*n_k rows, P the run's
// particles (its [Config].Batch) and n_i the members present of plate i;
// the rows are a mixed-radix index over (particle, outer plate, ...,
// inner plate), the innermost varying fastest. Outside every plate a value
// has P rows.
type Stack []*Frame

// Rows returns the number of rows per particle: the product of the
// plates' Len.
func (st Stack) Rows() int {
	n := 1
	for _, f := range st {
		n *= f.Len()
	}
	return n
}

// Scale returns the product of the plates' Scale.
func (st Stack) Scale() float64 {
	s := 1.0
	for _, f := range st {
		s *= f.Scale()
	}
	return s
}

// Names returns the plates' names, outermost first.
func (st Stack) Names() []string {
	names := make([]string, len(st))
	for i, f := range st {
		names[i] = f.Name
	}
	return names
}

// Common returns the length of the longest common prefix of st and other,
// plates being compared by name.
func (st Stack) Common(other Stack) int {
	n := 0
	for n < len(st) && n < len(other) && st[n].Name == other[n].Name {
		n++
	}
	return n
}

// String returns the plates as "[outer[N] inner[n/N]]", "[]" for none.
func (st Stack) String() string {
	parts := make([]string, len(st))
	for i, f := range st {
		parts[i] = f.String()
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// PlateOption configures a plate created by [Plate].
type PlateOption func(*Frame)

// Subsample makes the plate hold n of its members, drawn at random without
// replacement from the run's random source (so reproducible from the
// seed), unless a handler supplies them (a replayed guide's, say).
func Subsample(n int) PlateOption { return func(f *Frame) { f.want = n } }

// SubsampleIndices makes the plate hold the given members, in that order.
// The slice is copied.
func SubsampleIndices(indices []int) PlateOption {
	return func(f *Frame) {
		f.Indices = slices.Clone(indices)
		f.want = len(indices)
		if f.Indices == nil {
			f.Indices = []int{}
		}
	}
}

// Plate returns a view of ctx inside the plate name of size members: an
// independence context (the members are conditionally independent given
// what is outside the plate), as Pyro's plate. Sites sampled, observed or
// costed through the view record the plate in their [Site].Plates, have
// the plate's rows (see [Stack]), and, when the plate is subsampled, have
// their Scale multiplied by size/n, so that the sum over the subsample
// estimates the sum over the plate; sites outside the plate are not
// scaled. Plates nest: Plate(Plate(ctx, "groups", G), "members", M).
//
// Values cross plate levels explicitly: [Broadcast] brings a value from
// outside the plate in, [SumOut] sums the plate's rows out, [Data] brings
// a data set's rows in (the subsample's), and [Expand] broadcasts a
// parameter. A value with the rows of an outer level used at a site inside
// the plate is an error naming the site and both plate stacks.
//
// Entering the same plate again (same name in the same scope) returns a
// view of the same plate, with the same subsample. The plate is sent
// through the handlers as a site of kind [KindPlate], so a replayed trace
// gives the model the guide's subsample.
//
// Plate panics with a [SiteError] naming the plate when name is empty,
// size is not positive, the plate was entered before with another size or
// subsample, ctx is already inside it, or the subsample is larger than
// the plate, has an index outside [0, size) or twice.
func Plate(ctx *Ctx, name string, size int, opts ...PlateOption) *Ctx {
	ctx.check("Plate")
	addr := ctx.prefix + name
	f := &Frame{Name: addr, Size: size}
	for _, o := range opts {
		o(f)
	}
	if old, ok := ctx.run.frames[addr]; ok {
		if err := reuse(old, f, ctx.plates); err != nil {
			panic(&SiteError{Addr: addr, Err: err})
		}
		return ctx.inside(old)
	}
	s := &Site{Addr: addr, Kind: KindPlate, ID: -1, Scale: 1, Plates: append(slices.Clone(ctx.plates), f)}
	ctx.run.start(s, name)
	if size <= 0 {
		fail(s, "plate size must be > 0, got %d", size)
	}
	ctx.run.send(s)
	f = s.Frame()
	ctx.run.frames[addr] = f
	return ctx.inside(f)
}

// reuse checks that f, a plate entered again, asks for what old is.
func reuse(old, f *Frame, outer Stack) error {
	switch {
	case f.Size != old.Size:
		return fmt.Errorf("plate entered with size %d, but it has size %d in this run", f.Size, old.Size)
	case f.Indices != nil && !slices.Equal(f.Indices, old.Indices):
		return errors.New("plate entered with other subsample indices than it has in this run")
	case f.want > 0 && f.want != old.Len():
		return fmt.Errorf("plate entered with a subsample of %d, but it holds %d members in this run", f.want, old.Len())
	case slices.Contains(outer, old):
		return fmt.Errorf("plate entered again inside itself (plates %v)", outer)
	}
	return nil
}

// inside returns a view of c inside the plate f.
func (c *Ctx) inside(f *Frame) *Ctx {
	return &Ctx{run: c.run, gen: c.gen, prefix: c.prefix, plates: append(slices.Clone(c.plates), f)}
}

// Plates returns the plates c is inside, outermost first. The slice must
// not be modified.
func (c *Ctx) Plates() Stack { c.check("Plates"); return c.plates }

// Rows returns the number of rows of a value at c's plate level: the
// run's batch times the rows per particle of c's plates, or 0 while the
// batch is not known.
func (c *Ctx) Rows() int { c.check("Rows"); return c.run.cfg.Batch * c.plates.Rows() }

// Indices returns the members of c's innermost plate present in the run,
// in row order (all of them when it is not subsampled). It panics when c
// is not inside a plate.
func Indices(ctx *Ctx) []int {
	f := ctx.innermost("Indices")
	if f.Indices == nil {
		idx := make([]int, f.Size)
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	return slices.Clone(f.Indices)
}

// innermost returns c's innermost plate, panicking when there is none.
func (c *Ctx) innermost(fn string) *Frame {
	c.check(fn)
	if len(c.plates) == 0 {
		panic(&SiteError{Addr: c.run.current, After: true, Err: fmt.Errorf("%s: the context is not inside a plate (see ppl.Plate)", fn)})
	}
	return c.plates[len(c.plates)-1]
}

// Frame returns the plate of a site of kind [KindPlate], nil for other
// kinds.
func (s *Site) Frame() *Frame {
	if s.Kind != KindPlate || len(s.Plates) == 0 {
		return nil
	}
	return s.Plates[len(s.Plates)-1]
}

// plate is the default behaviour of a plate site: it checks the
// subsample, or draws one.
func (r *run) plate(s *Site) {
	f := s.Frame()
	if f == nil {
		fail(s, "plate site without a plate")
	}
	switch {
	case f.Indices != nil:
		checkIndices(s, f)
	case f.want < 0:
		fail(s, "subsample size must be > 0, got %d", f.want)
	case f.want > f.Size:
		fail(s, "subsample of %d is larger than the plate's size %d", f.want, f.Size)
	case f.want > 0 && f.want < f.Size:
		if r.cfg.Rand == nil {
			fail(s, "no random source to draw the subsample: pass one with trace.Seed or ppl.Config")
		}
		// A partial Fisher-Yates shuffle: the first want of a random
		// permutation.
		perm := make([]int, f.Size)
		for i := range perm {
			perm[i] = i
		}
		for i := 0; i < f.want; i++ {
			j := i + r.cfg.Rand.IntN(f.Size-i)
			perm[i], perm[j] = perm[j], perm[i]
		}
		f.Indices = perm[:f.want:f.want]
	}
}

// checkIndices validates a given subsample.
func checkIndices(s *Site, f *Frame) {
	switch {
	case len(f.Indices) == 0:
		fail(s, "empty subsample")
	case len(f.Indices) > f.Size:
		fail(s, "subsample of %d is larger than the plate's size %d", len(f.Indices), f.Size)
	}
	seen := make(map[int]bool, len(f.Indices))
	for _, i := range f.Indices {
		if i < 0 || i >= f.Size {
			fail(s, "subsample index %d is outside the plate's [0, %d)", i, f.Size)
		}
		if seen[i] {
			fail(s, "subsample index %d appears twice", i)
		}
		seen[i] = true
	}
}
