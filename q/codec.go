package q

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/internal/ckpt"
	"github.com/backpropq/backpropq/nn"
)

// encodeCritic writes the kind and the weights of c.
func encodeCritic(e *ckpt.Encoder, c Critic) error {
	switch c := c.(type) {
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
	case *NetCritic:
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
		if c.norm == nil {
			e.Uint32(0)
		} else {
			e.Uint32(1)
			e.Float64s(c.norm)
			e.Float64s(c.moments[:])
		}
	default:
		return fmt.Errorf("cannot save a %T", c)
	}
	return nil
}

// encodeOptimizer writes the Adam state of a NetCritic, per parameter in
// the order of its Params: 0 for a parameter without state, or 1, the step
// count and the first and second moments. A Tabular critic has none.
func encodeOptimizer(e *ckpt.Encoder, c Critic) {
	n, ok := c.(*NetCritic)
	if !ok {
		return
	}
	state := n.opt.State()
	for _, p := range n.mlp.Params() {
		st := state[p.Name]
		if st == nil {
			e.Uint32(0)
			continue
		}
		e.Uint32(1)
		e.Int64(st.Step)
		for _, b := range st.Buffers {
			e.Float64s(mat.DenseCopyOf(b).RawMatrix().Data)
		}
	}
}

// decodeOptimizer reads what encodeOptimizer wrote into c's optimizer.
func decodeOptimizer(d *ckpt.Decoder, key string, c Critic) {
	n, ok := c.(*NetCritic)
	if !ok {
		return
	}
	state := map[string]*nn.ParamState{}
	for _, p := range n.mlp.Params() {
		switch flag := d.Uint32(); {
		case d.Err() != nil:
			return
		case flag == 0:
			continue
		case flag != 1:
			d.Fail("critic %q: bad optimizer flag %d", key, flag)
			return
		}
		step := d.Int64()
		r, cols := p.Value.Dims()
		m := d.Float64s(uint64(r * cols))
		v := d.Float64s(uint64(r * cols))
		if d.Err() != nil {
			return
		}
		state[p.Name] = &nn.ParamState{Step: step, Buffers: []*mat.Dense{mat.NewDense(r, cols, m), mat.NewDense(r, cols, v)}}
	}
	if err := n.opt.SetState(state); err != nil {
		d.Fail("critic %q: %v", key, err)
	}
}

// encodeSlow writes 0 for no slow-tracking copy, or 1, alpha, the copy's
// weights and the pending changes dtheta.
func encodeSlow(e *ckpt.Encoder, st *slowTarget) error {
	if st == nil {
		e.Uint32(0)
		return nil
	}
	e.Uint32(1)
	e.Float64s([]float64{st.alpha})
	if err := encodeCritic(e, st.target); err != nil {
		return err
	}
	e.Uint32(uint32(len(st.delta)))
	for _, d := range st.delta {
		e.Uint32(uint32(len(d)))
		e.Float64s(d)
	}
	return nil
}

// decodeSlow reads what encodeSlow wrote for the critic c of key, checking
// that the copy matches c's kind and shapes; nil when none was saved.
func decodeSlow(d *ckpt.Decoder, key string, layout Layout, c Critic) *slowTarget {
	switch flag := d.Uint32(); {
	case d.Err() != nil || flag == 0:
		return nil
	case flag != 1:
		d.Fail("critic %q: bad slow-tracking flag %d", key, flag)
		return nil
	}
	alpha := d.Float64s(1)
	target := decodeCritic(d, 2, key, layout)
	if d.Err() != nil {
		return nil
	}
	if !(alpha[0] > 0 && alpha[0] <= 1) {
		d.Fail("critic %q: slow-tracking alpha %v", key, alpha[0])
		return nil
	}
	w, tw := c.Weights(), target.Weights()
	if fmt.Sprintf("%T", c) != fmt.Sprintf("%T", target) || len(w) != len(tw) {
		d.Fail("critic %q: the slow-tracking copy does not match the critic", key)
		return nil
	}
	n := d.Count(4)
	if d.Err() == nil && n != len(w) {
		d.Fail("critic %q: %d slow-tracking changes for %d weight arrays", key, n, len(w))
		return nil
	}
	st := &slowTarget{alpha: alpha[0], target: target}
	for i := 0; i < n && d.Err() == nil; i++ {
		k := d.Count(8)
		if d.Err() == nil && (len(tw[i]) > len(w[i]) || k > len(w[i])) {
			d.Fail("critic %q: slow-tracking copy larger than the critic", key)
			return nil
		}
		st.delta = append(st.delta, d.Float64s(uint64(k)))
	}
	if d.Err() != nil {
		return nil
	}
	if tab, ok := target.(*Tabular); ok {
		// The copy's cells are a prefix of the critic's, in its order.
		src := c.(*Tabular)
		for k, i := range tab.cells {
			if j, ok := src.cells[k]; !ok || j != i {
				d.Fail("critic %q: the slow-tracking copy's cells differ from the critic's", key)
				return nil
			}
		}
	}
	if net, ok := target.(*NetCritic); ok {
		net.tape = newTape()
	}
	return st
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

// decodeCritic reads what encodeCritic wrote (in section version
// version) for the critic of key with the given layout; nil after a
// failure, which d records.
func decodeCritic(d *ckpt.Decoder, version uint32, key string, layout Layout) Critic {
	switch kind := d.String(); kind {
	case "tabular":
		return decodeTabular(d, key, layout)
	case "net":
		return decodeNetCritic(d, version, key, layout)
	default:
		d.Fail("critic %q: unknown kind %q", key, kind)
	}
	return nil
}

// decodeTabular reads a tabular critic of layout.
func decodeTabular(d *ckpt.Decoder, key string, layout Layout) Critic {
	lr := d.Float64s(1)
	cellsN := d.Count(24)
	keys := make([]uint64, 0, cellsN)
	for range cellsN {
		keys = append(keys, d.Uint64())
	}
	vals := d.Float64s(uint64(cellsN))
	counts := d.Float64s(uint64(cellsN))
	if d.Err() != nil {
		return nil
	}
	t, err := NewTabular(layout, lr[0])
	if err != nil {
		d.Fail("critic %q: %v", key, err)
		return nil
	}
	for i, k := range keys {
		t.cells[k] = i
	}
	if len(t.cells) != len(keys) {
		d.Fail("critic %q: repeated cells", key)
		return nil
	}
	t.values, t.counts = vals, counts
	return t
}

// decodeNetCritic reads a network critic of layout.
func decodeNetCritic(d *ckpt.Decoder, version uint32, key string, layout Layout) Critic {
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
			return nil
		}
		w := d.Float64s(uint64(r * cols))
		b := d.Float64s(uint64(cols))
		if d.Err() != nil {
			return nil
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
		return nil
	}
	if layers == 0 {
		d.Fail("critic %q: no layers", key)
		return nil
	}
	n := &NetCritic{layout: layout, mlp: m, opt: nn.NewAdam(lr[0]), tape: nil, steps: 1}
	if version >= 2 {
		switch flag := d.Uint32(); {
		case d.Err() != nil:
			return nil
		case flag == 1:
			n.norm = d.Float64s(2)
			mom := d.Float64s(3)
			if d.Err() != nil {
				return nil
			}
			copy(n.moments[:], mom)
			if !(n.norm[1] > 0) || math.IsInf(n.norm[1], 0) || math.IsNaN(n.norm[0]) || math.IsInf(n.norm[0], 0) {
				d.Fail("critic %q: bad output normalization %v", key, n.norm)
				return nil
			}
		case flag != 0:
			d.Fail("critic %q: bad normalization flag %d", key, flag)
			return nil
		}
	}
	return n
}
