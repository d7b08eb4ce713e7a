package nn

import (
	"errors"
	"fmt"
	"io"
	"slices"

	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/internal/ckpt"
)

// Section names and format versions of the checkpoint sections nn owns.
const (
	paramsSection    = "nn.params"
	optimizerSection = "nn.optimizer"
	sectionVersion   = 1
)

// SaveFile writes the parameters of s and, if opt is not nil, the state of
// opt to path atomically: on error the previous file, if any, is unchanged.
// Gradients are not saved.
func SaveFile(path string, s *Store, opt Optimizer) error {
	sections, err := MarshalSections(s, opt)
	if err != nil {
		return fmt.Errorf("nn: save %q: %w", path, err)
	}
	if err := ckpt.WriteFile(path, sections); err != nil {
		return fmt.Errorf("nn: save %q: %w", path, err)
	}
	return nil
}

// LoadFile restores into s, and into opt if it is not nil, what
// [SaveFile] wrote to path. It reads and checks the whole file first: if
// the file is missing, truncated, corrupted, of another version, holds a
// parameter whose shape differs from the store's, or lacks the optimizer
// state opt asks for, LoadFile returns an error naming the file and the
// reason and changes nothing. See [PrepareLoad] for what a load changes.
func LoadFile(path string, s *Store, opt Optimizer) error {
	sections, err := ckpt.ReadFile(path)
	if err != nil {
		return fmt.Errorf("nn: load %q: %w", path, err)
	}
	if err := load(sections, s, opt); err != nil {
		return fmt.Errorf("nn: load %q: %w", path, err)
	}
	return nil
}

// Encode writes a checkpoint of s and opt (which may be nil) to w, as
// [SaveFile] does to a file.
func Encode(w io.Writer, s *Store, opt Optimizer) error {
	sections, err := MarshalSections(s, opt)
	if err != nil {
		return fmt.Errorf("nn: encode: %w", err)
	}
	if err := ckpt.Encode(w, sections); err != nil {
		return fmt.Errorf("nn: encode: %w", err)
	}
	return nil
}

// Decode reads a checkpoint from r into s and opt (which may be nil), as
// [LoadFile] does from a file: on error nothing changes.
func Decode(r io.Reader, s *Store, opt Optimizer) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("nn: decode: %w", err)
	}
	sections, err := ckpt.Decode(data)
	if err == nil {
		err = load(sections, s, opt)
	}
	if err != nil {
		return fmt.Errorf("nn: decode: %w", err)
	}
	return nil
}

func load(sections map[string][]byte, s *Store, opt Optimizer) error {
	apply, err := PrepareLoad(sections, s, opt)
	if err != nil {
		return err
	}
	return apply()
}

// MarshalSections encodes the parameters of s, and the state of opt if it
// is not nil, as checkpoint sections keyed by section name. Packages that
// save more state in the same file add their own sections to the map.
func MarshalSections(s *Store, opt Optimizer) (map[string][]byte, error) {
	if s == nil {
		return nil, errors.New("nil store")
	}
	var e ckpt.Encoder
	e.Uint32(sectionVersion)
	s.mu.Lock()
	params := s.sorted()
	e.Uint32(uint32(len(params)))
	for _, p := range params {
		e.String(p.Name)
		encodeMatrix(&e, p.Value)
	}
	s.mu.Unlock()
	sections := map[string][]byte{paramsSection: e.Bytes()}
	if opt == nil {
		return sections, nil
	}
	var o ckpt.Encoder
	o.Uint32(sectionVersion)
	o.String(opt.Kind())
	state := opt.State()
	names := make([]string, 0, len(state))
	for name := range state {
		names = append(names, name)
	}
	slices.Sort(names)
	o.Uint32(uint32(len(names)))
	for _, name := range names {
		st := state[name]
		o.String(name)
		o.Int64(st.Step)
		o.Uint32(uint32(len(st.Buffers)))
		for i, b := range st.Buffers {
			if b == nil {
				return nil, fmt.Errorf("optimizer state of %q: buffer %d is nil", name, i)
			}
			encodeMatrix(&o, b)
		}
	}
	sections[optimizerSection] = o.Bytes()
	return sections, nil
}

func encodeMatrix(e *ckpt.Encoder, m *mat.Dense) {
	r, c := m.Dims()
	e.Uint32(uint32(r))
	e.Uint32(uint32(c))
	raw := m.RawMatrix()
	for i := 0; i < r; i++ {
		e.Float64s(raw.Data[i*raw.Stride : i*raw.Stride+c])
	}
}

func decodeMatrix(d *ckpt.Decoder, what string) *mat.Dense {
	r, c := d.Uint32(), d.Uint32()
	if d.Err() != nil {
		return nil
	}
	if r == 0 || c == 0 {
		d.Fail("%s: empty shape [%dx%d]", what, r, c)
		return nil
	}
	// r·c < 2^64 cannot overflow; Float64s checks it against the input.
	data := d.Float64s(uint64(r) * uint64(c))
	if d.Err() != nil {
		return nil
	}
	return mat.NewDense(int(r), int(c), data)
}

func decodeVersion(d *ckpt.Decoder) {
	if v := d.Uint32(); d.Err() == nil && v != sectionVersion {
		d.Fail("unsupported section version %d (this build reads version %d)", v, sectionVersion)
	}
}

// minEntry is the least number of bytes an encoded entry can take: an
// empty name's length, a matrix's shape and one value.
const minEntry = 4 + 8 + 8

// PrepareLoad decodes and checks the sections nn owns (other sections are
// ignored) against s and opt, changing nothing, and returns a function
// that applies them. Apply copies each saved value into the store's
// parameter of that name, or adds the parameter if the store has none;
// parameters the file does not mention are left alone. If opt is not nil,
// apply replaces its state with the saved one, which must exist and be of
// opt's kind. Apply checks the store again (it must not have gained a
// parameter of a conflicting shape meanwhile) and calls opt.SetState
// before changing the store, so if it returns an error nothing has
// changed.
func PrepareLoad(sections map[string][]byte, s *Store, opt Optimizer) (apply func() error, err error) {
	if s == nil {
		return nil, errors.New("nil store")
	}
	names, loaded, err := decodeParams(sections)
	if err != nil {
		return nil, err
	}
	// check compares the loaded shapes with the store's; the caller holds
	// the lock.
	check := func() error {
		for _, name := range names {
			if p := s.params[name]; p != nil {
				r, c := loaded[name].Dims()
				if pr, pc := p.Value.Dims(); pr != r || pc != c {
					return fmt.Errorf("parameter %q has shape [%dx%d] in the file but [%dx%d] in the store", name, r, c, pr, pc)
				}
			}
		}
		return nil
	}
	s.mu.Lock()
	err = check()
	shapeOf := func(name string) (r, c int, ok bool) {
		if m := loaded[name]; m != nil {
			r, c = m.Dims()
			return r, c, true
		}
		if p := s.params[name]; p != nil {
			r, c = p.Value.Dims()
			return r, c, true
		}
		return 0, 0, false
	}
	var state map[string]*ParamState
	if err == nil && opt != nil {
		state, err = decodeOptimizer(sections, opt.Kind(), shapeOf)
	}
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if err := check(); err != nil {
			return err
		}
		if opt != nil {
			if err := opt.SetState(state); err != nil {
				return fmt.Errorf("%s: %w", optimizerSection, err)
			}
		}
		for _, name := range names {
			if p := s.params[name]; p != nil {
				p.Value.Copy(loaded[name])
			} else {
				s.put(NewParam(name, loaded[name]), name)
			}
		}
		return nil
	}, nil
}

// decodeParams decodes the parameters section: the names in the file's
// order and the values by name.
func decodeParams(sections map[string][]byte) (names []string, loaded map[string]*mat.Dense, err error) {
	data, ok := sections[paramsSection]
	if !ok {
		return nil, nil, fmt.Errorf("no %q section", paramsSection)
	}
	d := ckpt.NewDecoder(paramsSection, data)
	decodeVersion(d)
	loaded = make(map[string]*mat.Dense)
	for i, n := 0, d.Count(minEntry); i < n && d.Err() == nil; i++ {
		name := d.String()
		m := decodeMatrix(d, fmt.Sprintf("parameter %q", name))
		switch {
		case d.Err() != nil:
		case name == "":
			d.Fail("parameter %d has an empty name", i)
		case loaded[name] != nil:
			d.Fail("parameter %q appears twice", name)
		default:
			loaded[name] = m
			names = append(names, name)
		}
	}
	if err := d.Finish(); err != nil {
		return nil, nil, err
	}
	return names, loaded, nil
}

// MatchParams checks that the checkpoint sections hold the parameters of
// s, no more and no fewer, with the same shapes, and returns an error
// naming the first difference in name order. With extra set, parameters
// of the checkpoint that s lacks are allowed (a store whose parameters are
// created on first use, which has not created them yet). It changes
// nothing.
func MatchParams(sections map[string][]byte, s *Store, extra bool) error {
	if s == nil {
		return errors.New("nil store")
	}
	names, loaded, err := decodeParams(sections)
	if err != nil {
		return err
	}
	s.mu.Lock()
	params := s.sorted()
	s.mu.Unlock()
	slices.Sort(names)
	i := 0
	for _, p := range params {
		for ; i < len(names) && names[i] < p.Name; i++ {
			if !extra {
				return fmt.Errorf("the checkpoint holds parameter %q, which this store does not have", names[i])
			}
		}
		m := loaded[p.Name]
		if m == nil {
			return fmt.Errorf("parameter %q is not in the checkpoint", p.Name)
		}
		r, c := m.Dims()
		if pr, pc := p.Value.Dims(); pr != r || pc != c {
			return fmt.Errorf("parameter %q has shape [%dx%d] in the checkpoint but [%dx%d] in the store", p.Name, r, c, pr, pc)
		}
		i++
	}
	if i < len(names) && !extra {
		return fmt.Errorf("the checkpoint holds parameter %q, which this store does not have", names[i])
	}
	return nil
}

func decodeOptimizer(sections map[string][]byte, kind string, shapeOf func(string) (int, int, bool)) (map[string]*ParamState, error) {
	data, ok := sections[optimizerSection]
	if !ok {
		return nil, fmt.Errorf("no %q section: the file holds no optimizer state (load with a nil optimizer to restore only the parameters)", optimizerSection)
	}
	d := ckpt.NewDecoder(optimizerSection, data)
	decodeVersion(d)
	if k := d.String(); d.Err() == nil && k != kind {
		return nil, fmt.Errorf("%s: the state is of a %q optimizer, not %q", optimizerSection, k, kind)
	}
	state := make(map[string]*ParamState)
	for i, n := 0, d.Count(4+8+4); i < n && d.Err() == nil; i++ {
		name := d.String()
		st := &ParamState{Step: d.Int64()}
		nbuf := d.Count(8 + 8)
		for j := 0; j < nbuf && d.Err() == nil; j++ {
			b := decodeMatrix(d, fmt.Sprintf("state of %q", name))
			if d.Err() != nil {
				break
			}
			if r, c, ok := shapeOf(name); ok {
				if br, bc := b.Dims(); br != r || bc != c {
					d.Fail("state of %q has shape [%dx%d] but the parameter has [%dx%d]", name, br, bc, r, c)
				}
			}
			st.Buffers = append(st.Buffers, b)
		}
		switch {
		case d.Err() != nil:
		case name == "":
			d.Fail("state %d has an empty name", i)
		case state[name] != nil:
			d.Fail("state of %q appears twice", name)
		case st.Step < 0:
			d.Fail("state of %q: negative step count %d", name, st.Step)
		default:
			state[name] = st
		}
	}
	if err := d.Finish(); err != nil {
		return nil, err
	}
	return state, nil
}
