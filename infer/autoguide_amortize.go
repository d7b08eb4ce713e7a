package infer

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
)

// amortizer is the network that gives an amortized latent its location
// and scale from its member's inputs: one tanh hidden layer, its weights
// guide parameters under Prefix/addr/net/ like any other.
type amortizer struct {
	inputs *ad.Tensor // [members x F]
	hidden int
}

// amortizers returns the network of each latent of ls whose innermost
// plate opts.Amortize lists. It is an error naming the plate when one
// holds no latent or its inputs do not have a row per member.
func amortizers(kind string, ls []latent, opts AutoOptions) (map[string]amortizer, error) {
	hidden := opts.Hidden
	if hidden <= 0 {
		hidden = 32
	}
	nets := make(map[string]amortizer)
	for plate, inputs := range opts.Amortize {
		used := false
		for _, l := range ls {
			if len(l.plates) == 0 || l.plates[len(l.plates)-1].name != plate {
				continue
			}
			if inputs == nil || inputs.Rows() != l.members() {
				return nil, fmt.Errorf("infer: %s: Amortize: plate %q: the inputs need one row per member (%d)", kind, plate, l.members())
			}
			nets[l.addr], used = amortizer{inputs: inputs, hidden: hidden}, true
		}
		if !used {
			return nil, fmt.Errorf("infer: %s: Amortize: plate %q holds no latent of the guide", kind, plate)
		}
	}
	return nets, nil
}

// forward returns the location and softplus scale, [rows x cols] at pctx's
// rows, of the present members. The output layer starts at zero weights,
// so the guide starts as the per-member one does: location 0, scale
// initScale.
func (a amortizer) forward(ctx, pctx *ppl.Ctx, prefix string, cols int, initScale float64) (loc, scale *ad.Tensor) {
	in := a.inputs.Cols()
	glorot := nn.InitFunc(func(m *mat.Dense, rng *rand.Rand) {
		r, c := m.Dims()
		bound := math.Sqrt(6 / float64(r+c))
		for i := range r {
			for j := range c {
				m.Set(i, j, bound*(2*rng.Float64()-1))
			}
		}
	})
	w1 := ppl.Param(ctx, prefix+"/net/W1", in, a.hidden, glorot)
	b1 := ppl.Param(ctx, prefix+"/net/b1", 1, a.hidden, nn.Zeros{})
	w2 := ppl.Param(ctx, prefix+"/net/W2", a.hidden, 2*cols, nn.Zeros{})
	bias := nn.InitFunc(func(m *mat.Dense, _ *rand.Rand) {
		for j := range cols {
			m.Set(0, cols+j, math.Log(math.Expm1(initScale))) // softplus⁻¹
		}
	})
	b2 := ppl.Param(ctx, prefix+"/net/b2", 1, 2*cols, bias)
	x := ppl.Data(pctx, a.inputs)
	out := ad.Add(ad.MatMul(ad.Tanh(ad.Add(ad.MatMul(x, w1), b1)), w2), b2)
	return ad.Slice(out, 0, cols), ad.Softplus(ad.Slice(out, cols, 2*cols))
}
