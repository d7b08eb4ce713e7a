package q

import (
	"fmt"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/trace"
)

// Differentiable is a [Critic] that can run on a tape, so that its value
// has gradient paths to its input: [NetCritic] critics are, [Tabular] ones are
// not.
type Differentiable interface {
	Critic
	// Forward returns the critic's values at the input rows x, [B x W],
	// as a [B x 1] tensor on x's tape.
	Forward(x *ad.Tensor) *ad.Tensor
}

// Forward returns the critic of node i at the scope values of tr on the
// trace's tape, with gradient paths to those values: the Q_w(z) whose
// derivative dQ/dz a control variate needs (eq. 27, appendix 5.8). values
// replaces the value of a scope site by another tensor of the same shape
// (a relaxed sample, say; for a categorical site a [B x K] relaxed one-hot
// row in place of the index). v must come from [Set.Evaluate] on tr; the
// critic is the one v used, so a critic seen for the first time works
// before [Set.Apply] adds it. It is an error if the critic is not
// [Differentiable].
func (v *Values) Forward(net *Network, tr *trace.Trace, i int, values map[string]*ad.Tensor) (*ad.Tensor, error) {
	if i < 0 || i >= len(net.Nodes) || len(v.keys) != len(net.Nodes) {
		return nil, fmt.Errorf("q: Forward: no node %d in values of %d nodes", i, len(v.keys))
	}
	key := v.keys[i]
	e := v.set.critics[key]
	if e == nil {
		e = v.fresh[key]
	}
	if e == nil {
		return nil, fmt.Errorf("q: Forward: critic %q is gone", key)
	}
	d, ok := e.critic.(Differentiable)
	if !ok {
		return nil, fmt.Errorf("q: Forward: critic %q (%T) is not differentiable", key, e.critic)
	}
	nd := net.Nodes[i]
	fz, err := newFeaturizer(nd, tr, tr.Graph(), v.set.templated(nd.Site))
	if err != nil {
		return nil, err
	}
	tp := g0(fz)
	own := map[string]*ad.Tensor{}
	for fi, f := range fz.layout.Fields {
		s := fz.sites[fi]
		var t *ad.Tensor
		switch {
		case f.Kind == Index:
			data := make([]float64, 0, fz.rows*f.Width)
			for range fz.rows {
				for _, k := range fz.index {
					data = append(data, float64(k))
				}
			}
			t = tp.FromData(fz.rows, f.Width, data)
		case values[s.Addr] != nil:
			t = values[s.Addr]
			if !(len(s.Plates) == len(fz.plates) && s.Plates.Common(fz.plates) == len(fz.plates)) {
				t = ppl.Move(t, s.Plates, fz.plates)
			}
		case f.Kind == OneHot && s.Value.Cols() == 1 && f.Classes > 1:
			t = ad.OneHot(moveValue(s, fz.plates), f.Classes)
		default:
			t = moveValue(s, fz.plates)
		}
		if r, c := t.Dims(); r != fz.rows || c != f.Width {
			return nil, fmt.Errorf("q: Forward: value of %q is [%dx%d], the critic reads [%dx%d]", s.Addr, r, c, fz.rows, f.Width)
		}
		own[f.Addr] = t
	}
	// The critic's layout may hold fields this node lacks (a template's
	// union): they read zeros, as in Evaluate.
	var parts []*ad.Tensor
	for _, f := range e.critic.Layout().Fields {
		t, ok := own[f.Addr]
		if !ok {
			t = tp.Zeros(fz.rows, f.Width)
		}
		parts = append(parts, t)
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("q: Forward: node %d has an empty scope", i)
	}
	x := parts[0]
	if len(parts) > 1 {
		x = ad.Concat(parts...)
	}
	return d.Forward(x), nil
}

// g0 returns the tape of the first scope site's value.
func g0(fz *featurizer) *ad.Tape {
	for _, s := range fz.sites {
		if s != nil {
			return s.Value.Tape()
		}
	}
	return nil
}
