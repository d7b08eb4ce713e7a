package q

import (
	"bytes"
	"fmt"
	"slices"

	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/internal/ckpt"
	"github.com/backpropq/backpropq/nn"
)

// Section is the name of the checkpoint section that holds a [Set]'s
// critics; [Set.MarshalSections] and [Set.PrepareLoad] let a training
// loop's checkpoint carry it beside the parameters.
const Section = "q.critics"

const sectionVersion = 1

// saved is a critic read from a file, awaiting its key's first sight.
type saved struct {
	layout Layout
	critic Critic
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
// Optimizer state of Linear and MLP critics and slow-tracking copies are
// not saved: a loaded critic restarts Adam and its target copy from its
// weights. A critic that is not one of the package's kinds is an error.
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
	}
	var items []item
	for k, e := range s.critics {
		items = append(items, item{k, e.critic})
	}
	for k, p := range s.pending {
		if _, ok := s.critics[k]; !ok {
			items = append(items, item{k, p.critic})
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
		switch c := it.critic.(type) {
		case *Tabular:
			e.String("tabular")
			e.Float64s([]float64{c.LR})
			keys := make([]uint64, len(c.values))
			for k, i := range c.cells {
				keys[i] = k
			}
			e.Uint32(uint32(len(keys)))
			for _, k := range keys {
				e.Uint64(k)
			}
			e.Float64s(c.values)
			e.Float64s(c.counts)
		case *Net:
			e.String("net")
			e.Float64s([]float64{c.opt.LR})
			e.Uint32(uint32(len(c.mlp.Layers)))
			for i, l := range c.mlp.Layers {
				r, cols := l.W.Value.Dims()
				e.Uint32(uint32(r))
				e.Uint32(uint32(cols))
				e.Float64s(mat.DenseCopyOf(l.W.Value).RawMatrix().Data)
				e.Float64s(mat.DenseCopyOf(l.B.Value).RawMatrix().Data)
				if i < len(c.mlp.Activations) {
					e.Uint32(uint32(c.mlp.Activations[i]))
				}
			}
		default:
			return nil, fmt.Errorf("critic %q: cannot save a %T", it.key, it.critic)
		}
	}
	return map[string][]byte{Section: e.Bytes()}, nil
}

func encodeLayout(e *ckpt.Encoder, l Layout) {
	e.Uint32(uint32(len(l.Fields)))
	for _, f := range l.Fields {
		e.String(f.Addr)
		e.Uint32(uint32(f.Kind))
		e.Uint32(uint32(f.Width))
		e.Uint32(uint32(f.Classes))
	}
}

func decodeLayout(d *ckpt.Decoder) Layout {
	n := d.Count(16)
	l := Layout{}
	for range n {
		f := Field{Addr: d.String(), Kind: FieldKind(d.Uint32()), Width: int(d.Uint32()), Classes: int(d.Uint32())}
		if d.Err() == nil && (f.Kind < Binary || f.Kind > Extra || f.Width <= 0 || f.Width > 1<<24) {
			d.Fail("bad field %q", f.Addr)
		}
		l.Fields = append(l.Fields, f)
	}
	return l
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
	if v := d.Uint32(); d.Err() == nil && v != sectionVersion {
		return nil, fmt.Errorf("section %q: version %d, want %d", Section, v, sectionVersion)
	}
	n := d.Count(12)
	loaded := map[string]*saved{}
	var order []string
	for range n {
		key := d.String()
		layout := decodeLayout(d)
		kind := d.String()
		var c Critic
		switch kind {
		case "tabular":
			lr := d.Float64s(1)
			cellsN := d.Count(24)
			keys := make([]uint64, 0, cellsN)
			for range cellsN {
				keys = append(keys, d.Uint64())
			}
			vals := d.Float64s(uint64(cellsN))
			counts := d.Float64s(uint64(cellsN))
			if d.Err() != nil {
				break
			}
			t, err := NewTabular(layout, lr[0])
			if err != nil {
				d.Fail("critic %q: %v", key, err)
				break
			}
			for i, k := range keys {
				t.cells[k] = i
			}
			if len(t.cells) != len(keys) {
				d.Fail("critic %q: repeated cells", key)
				break
			}
			t.values, t.counts = vals, counts
			c = t
		case "net":
			lr := d.Float64s(1)
			layers := d.Count(8)
			m := &nn.MLP{}
			in := max(layout.Width(), 1)
			for i := range layers {
				r, cols := int(d.Uint32()), int(d.Uint32())
				if d.Err() == nil && (r != in || cols <= 0 || cols > 1<<16 || (i == layers-1 && cols != 1)) {
					d.Fail("critic %q: layer %d is %dx%d", key, i, r, cols)
				}
				if d.Err() != nil {
					break
				}
				w := d.Float64s(uint64(r * cols))
				b := d.Float64s(uint64(cols))
				if d.Err() != nil {
					break
				}
				m.Layers = append(m.Layers, &nn.Linear{
					W: nn.NewParam(fmt.Sprintf("%d/W", i), mat.NewDense(r, cols, w)),
					B: nn.NewParam(fmt.Sprintf("%d/b", i), mat.NewDense(1, cols, b)),
				})
				if i < layers-1 {
					a := nn.Activation(d.Uint32())
					if a > nn.Softplus {
						d.Fail("critic %q: bad activation %d", key, a)
					}
					m.Activations = append(m.Activations, a)
				}
				in = cols
			}
			if d.Err() != nil {
				break
			}
			if layers == 0 {
				d.Fail("critic %q: no layers", key)
				break
			}
			c = &Net{layout: layout, mlp: m, opt: nn.NewAdam(lr[0]), tape: nil, steps: 1}
		default:
			d.Fail("critic %q: unknown kind %q", key, kind)
		}
		if d.Err() != nil {
			break
		}
		if _, dup := loaded[key]; dup {
			d.Fail("critic %q saved twice", key)
			break
		}
		loaded[key] = &saved{layout: layout, critic: c}
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
			if net, ok := p.critic.(*Net); ok {
				net.tape = newTape()
			}
			if e, ok := s.critics[key]; ok {
				if e.critic.Layout().String() == p.layout.String() {
					s.Put(key, p.critic)
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
