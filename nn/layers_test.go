package nn

import (
	"math"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
)

func TestLinear(t *testing.T) {
	tests := []struct{ batch, in, out int }{{1, 1, 1}, {1, 4, 3}, {5, 3, 2}, {7, 1, 6}}
	for _, tc := range tests {
		rng := newRand()
		l := NewLinear(tc.in, tc.out, rng)
		Normal{Std: 1}.Init(l.B.Value, rng) // a non-zero bias
		x := randDense(rng, tc.batch, tc.in)
		tp := ad.NewTape()
		y := l.Forward(tp.Const(x))
		r, c := y.Dims()
		require.Equal(t, [2]int{tc.batch, tc.out}, [2]int{r, c})
		var want mat.Dense
		want.Mul(x, l.W.Value)
		for i := 0; i < tc.batch; i++ {
			for j := 0; j < tc.out; j++ {
				require.InDelta(t, want.At(i, j)+l.B.Value.At(0, j), y.At(i, j), 1e-12)
			}
		}
		w := randDense(rng, tc.batch, tc.out)
		checkGradients(t, l.Params(), []*mat.Dense{x}, func(tp *ad.Tape, xs []*ad.Tensor) *ad.Tensor {
			return weightedSum(l.Forward(xs[0]), w)
		})
	}
}

func TestLinearShapeMismatchPanics(t *testing.T) {
	l := NewLinear(3, 2, newRand())
	tp := ad.NewTape()
	require.Panics(t, func() { l.Forward(tp.Zeros(2, 4)) })
}

func TestMLP(t *testing.T) {
	tests := []struct {
		name  string
		sizes []int
		acts  []Activation
		batch int
	}{
		{"linear only", []int{3, 2}, nil, 4},
		{"tanh", []int{3, 5, 2}, []Activation{Tanh}, 1},
		{"relu sigmoid", []int{2, 4, 3, 1}, []Activation{ReLU, Sigmoid}, 6},
		{"softplus identity", []int{4, 3, 3, 2}, []Activation{Softplus, Identity}, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rng := newRand()
			m := NewMLP(tc.sizes, tc.acts, rng)
			require.Len(t, m.Layers, len(tc.sizes)-1)
			require.Len(t, m.Params(), 2*(len(tc.sizes)-1))
			for _, p := range m.Params() {
				Normal{Std: 0.7}.Init(p.Value, rng) // non-zero biases too
			}
			x := randDense(rng, tc.batch, tc.sizes[0])
			tp := ad.NewTape()
			y := m.Forward(tp.Const(x))
			r, c := y.Dims()
			require.Equal(t, [2]int{tc.batch, tc.sizes[len(tc.sizes)-1]}, [2]int{r, c})

			// Compare with the layers applied by hand.
			h := tp.Const(x)
			for i, l := range m.Layers {
				h = l.Forward(h)
				if i < len(tc.acts) {
					h = tc.acts[i].Apply(h)
				}
			}
			require.Equal(t, h.Data(), y.Data())

			w := randDense(rng, r, c)
			checkGradients(t, m.Params(), []*mat.Dense{x}, func(tp *ad.Tape, xs []*ad.Tensor) *ad.Tensor {
				return weightedSum(m.Forward(xs[0]), w)
			})
		})
	}
}

func TestNewMLPPanics(t *testing.T) {
	rng := newRand()
	require.Panics(t, func() { NewMLP([]int{3}, nil, rng) })
	require.Panics(t, func() { NewMLP([]int{3, 2}, []Activation{Tanh}, rng) })
	require.Panics(t, func() { NewMLP([]int{3, 0, 2}, []Activation{Tanh}, rng) })
	require.Panics(t, func() { NewLinear(1, 1, nil) })
}

func TestActivations(t *testing.T) {
	tp := ad.NewTape()
	x := tp.FromData(1, 3, []float64{-1, 0.5, 2})
	tests := []struct {
		act  Activation
		name string
		f    func(float64) float64
	}{
		{Identity, "Identity", func(v float64) float64 { return v }},
		{Tanh, "Tanh", math.Tanh},
		{ReLU, "ReLU", func(v float64) float64 { return math.Max(v, 0) }},
		{Sigmoid, "Sigmoid", func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }},
		{Softplus, "Softplus", func(v float64) float64 { return math.Log1p(math.Exp(v)) }},
	}
	for _, tc := range tests {
		require.Equal(t, tc.name, tc.act.String())
		y := tc.act.Apply(x)
		for j, v := range x.Data() {
			require.InDelta(t, tc.f(v), y.At(0, j), 1e-15)
		}
	}
	require.Equal(t, "Activation(9)", Activation(9).String())
	require.Panics(t, func() { Activation(9).Apply(x) })
}

// gruReference computes one GRU step with plain loops.
func gruReference(g *GRUCell, x, h *mat.Dense) *mat.Dense {
	b, _ := x.Dims()
	hb, hidden := h.Dims()
	sig := func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }
	affine := func(w, u, bias *Param, in, state []float64) []float64 {
		out := make([]float64, hidden)
		for j := range out {
			out[j] = bias.Value.At(0, j)
			for k, v := range in {
				out[j] += v * w.Value.At(k, j)
			}
			for k, v := range state {
				out[j] += v * u.Value.At(k, j)
			}
		}
		return out
	}
	out := mat.NewDense(b, hidden, nil)
	for i := 0; i < b; i++ {
		xi, hi := x.RawRowView(i), h.RawRowView(i%hb)
		z, r := affine(g.Wz, g.Uz, g.Bz, xi, hi), affine(g.Wr, g.Ur, g.Br, xi, hi)
		rh := make([]float64, hidden)
		for j := range rh {
			z[j], r[j] = sig(z[j]), sig(r[j])
			rh[j] = r[j] * hi[j]
		}
		n := affine(g.Wn, g.Un, g.Bn, xi, rh)
		for j := range n {
			n[j] = math.Tanh(n[j])
			out.Set(i, j, (1-z[j])*n[j]+z[j]*hi[j])
		}
	}
	return out
}

func TestGRUCell(t *testing.T) {
	tests := []struct {
		name                    string
		batch, in, hidden, hRow int // hRow: rows of h (1 broadcasts)
	}{
		{"B=1", 1, 2, 3, 1},
		{"batch", 4, 3, 2, 4},
		{"broadcast state", 3, 2, 4, 1},
		{"hidden 1", 2, 1, 1, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rng := newRand()
			g := NewGRUCell(tc.in, tc.hidden, rng)
			require.Equal(t, tc.hidden, g.Hidden())
			for _, p := range g.Params() {
				Normal{Std: 0.8}.Init(p.Value, rng) // exercise the biases
			}
			x := randDense(rng, tc.batch, tc.in)
			h := randDense(rng, tc.hRow, tc.hidden)
			tp := ad.NewTape()
			out := g.Forward(tp.Const(x), tp.Const(h))
			want := gruReference(g, x, h)
			r, c := out.Dims()
			require.Equal(t, [2]int{tc.batch, tc.hidden}, [2]int{r, c})
			for i := 0; i < r; i++ {
				for j := 0; j < c; j++ {
					require.InDelta(t, want.At(i, j), out.At(i, j), 1e-12)
				}
			}
			// Two steps, so that gradients also flow through the state.
			w := randDense(rng, tc.batch, tc.hidden)
			checkGradients(t, g.Params(), []*mat.Dense{x, h}, func(tp *ad.Tape, xs []*ad.Tensor) *ad.Tensor {
				h1 := g.Forward(xs[0], xs[1])
				return weightedSum(g.Forward(xs[0], h1), w)
			})
		})
	}
}

func TestGRUCellParamNames(t *testing.T) {
	var names []string
	for _, p := range NewGRUCell(2, 3, newRand()).Params() {
		names = append(names, p.Name)
	}
	require.Equal(t, []string{"Wz", "Uz", "bz", "Wr", "Ur", "br", "Wn", "Un", "bn"}, names)
}

func TestEmbedding(t *testing.T) {
	rng := newRand()
	e := NewEmbedding(5, 3, rng)
	ids := []float64{4, 0, 4, 2}
	tp := ad.NewTape()
	idx := tp.WithProvenance(tp.FromData(len(ids), 1, ids), ad.ProvenanceOf(7))
	out := e.Forward(idx)
	r, c := out.Dims()
	require.Equal(t, [2]int{4, 3}, [2]int{r, c})
	for i, id := range ids {
		require.Equal(t, e.W.Value.RawRowView(int(id)), out.Value().RawRowView(i))
	}
	require.True(t, out.Provenance().Has(7), "the ids' provenance flows to the output")

	w := randDense(rng, len(ids), 3)
	checkGradients(t, e.Params(), nil, func(tp *ad.Tape, _ []*ad.Tensor) *ad.Tensor {
		return weightedSum(e.Forward(tp.FromData(len(ids), 1, ids)), w)
	})
	// Row 1 and row 3 are never looked up: their gradient is exactly zero.
	require.Equal(t, []float64{0, 0, 0}, e.W.Grad.RawRowView(1))
	require.Equal(t, []float64{0, 0, 0}, e.W.Grad.RawRowView(3))

	require.Panics(t, func() { e.Forward(tp.FromData(1, 1, []float64{5})) })
	require.Panics(t, func() { e.Forward(tp.FromData(1, 1, []float64{1.5})) })
}

// TestLayersConcurrentTapes runs the same layers on several tapes at once
// (run with -race) and checks that each gets the serial result.
func TestLayersConcurrentTapes(t *testing.T) {
	rng := newRand()
	mlp := NewMLP([]int{3, 4, 2}, []Activation{Tanh}, rng)
	gru := NewGRUCell(2, 2, rng)
	emb := NewEmbedding(4, 3, rng)
	const workers = 4
	inputs := make([]*mat.Dense, workers)
	for i := range inputs {
		inputs[i] = randDense(rng, 2, 3)
	}
	run := func(x *mat.Dense) (float64, []*mat.Dense) {
		tp := ad.NewTape()
		in := tp.Const(x)
		e := emb.Forward(tp.FromData(2, 1, []float64{1, 3}))
		h := mlp.Forward(ad.Add(in, e))
		h = gru.Forward(h, gru.Forward(h, tp.Zeros(1, 2)))
		loss := ad.Sum(ad.Square(h))
		tp.ComputeGradients(loss)
		return loss.Item(), []*mat.Dense{tp.Grad(in)}
	}
	wantLoss := make([]float64, workers)
	wantGrad := make([][]*mat.Dense, workers)
	for i, x := range inputs {
		wantLoss[i], wantGrad[i] = run(x)
	}
	gotLoss := make([]float64, workers)
	gotGrad := make([][]*mat.Dense, workers)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			gotLoss[i], gotGrad[i] = run(inputs[i])
		}()
	}
	wg.Wait()
	require.Equal(t, wantLoss, gotLoss)
	for i := range workers {
		require.True(t, mat.Equal(wantGrad[i][0], gotGrad[i][0]))
	}
}
