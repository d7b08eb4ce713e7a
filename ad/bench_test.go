package ad_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
)

// The benchmark network: a 784-200(tanh)-784 decoder-like MLP whose
// logits score a binary batch under a Bernoulli likelihood, the shape of
// one VAE step on binarized MNIST.
const (
	mlpBatch  = 100
	mlpIn     = 784
	mlpHidden = 200
)

type mlp struct {
	x              *mat.Dense // [B x in] binary data
	w1, b1, w2, b2 *ad.Var
}

func newMLP(rng *rand.Rand) *mlp {
	randDense := func(r, c int, scale float64) *mat.Dense {
		d := make([]float64, r*c)
		for i := range d {
			d[i] = scale * rng.NormFloat64()
		}
		return mat.NewDense(r, c, d)
	}
	x := make([]float64, mlpBatch*mlpIn)
	for i := range x {
		if rng.Float64() < 0.3 {
			x[i] = 1
		}
	}
	return &mlp{
		x:  mat.NewDense(mlpBatch, mlpIn, x),
		w1: ad.NewVar(randDense(mlpIn, mlpHidden, 1/math.Sqrt(mlpIn))),
		b1: ad.NewVar(randDense(1, mlpHidden, 0.1)),
		w2: ad.NewVar(randDense(mlpHidden, mlpIn, 1/math.Sqrt(mlpHidden))),
		b2: ad.NewVar(randDense(1, mlpIn, 0.1)),
	}
}

func (m *mlp) params() []*ad.Var { return []*ad.Var{m.w1, m.b1, m.w2, m.b2} }

// stepAD runs one forward and backward pass through ad on tp, adding the
// gradients into the Vars, and returns the loss
// -Σ x·logits - softplus(logits).
func (m *mlp) stepAD(tp *ad.Tape) float64 {
	x := tp.Const(m.x)
	h := ad.Tanh(ad.Add(ad.MatMul(x, tp.Var(m.w1)), tp.Var(m.b1)))
	logits := ad.Add(ad.MatMul(h, tp.Var(m.w2)), tp.Var(m.b2))
	loss := ad.Neg(ad.Sum(ad.Sub(ad.Mul(x, logits), ad.Softplus(logits))))
	tp.Backward(loss)
	return loss.Item()
}

// gonumMLP is the same step written directly against gonum's mat, with
// every buffer allocated once.
type gonumMLP struct {
	a1, logits, dLogits, dH *mat.Dense
	dW1, dB1, dW2, dB2      *mat.Dense
}

func newGonumMLP() *gonumMLP {
	return &gonumMLP{
		a1:      mat.NewDense(mlpBatch, mlpHidden, nil),
		logits:  mat.NewDense(mlpBatch, mlpIn, nil),
		dLogits: mat.NewDense(mlpBatch, mlpIn, nil),
		dH:      mat.NewDense(mlpBatch, mlpHidden, nil),
		dW1:     mat.NewDense(mlpIn, mlpHidden, nil),
		dB1:     mat.NewDense(1, mlpHidden, nil),
		dW2:     mat.NewDense(mlpHidden, mlpIn, nil),
		dB2:     mat.NewDense(1, mlpIn, nil),
	}
}

// addRow adds the [1 x c] row vector to every row of dst.
func addRow(dst, row *mat.Dense) {
	r, _ := dst.Dims()
	b := row.RawRowView(0)
	for i := 0; i < r; i++ {
		d := dst.RawRowView(i)
		for j, v := range b {
			d[j] += v
		}
	}
}

// colSum sets the [1 x c] dst to the column sums of src.
func colSum(dst, src *mat.Dense) {
	r, _ := src.Dims()
	s := dst.RawRowView(0)
	clear(s)
	for i := 0; i < r; i++ {
		for j, v := range src.RawRowView(i) {
			s[j] += v
		}
	}
}

// step computes the loss and sets g's gradient fields; the hidden
// activation is kept in a1 (tanh applied in place).
func (g *gonumMLP) step(m *mlp) float64 {
	h := g.a1
	h.Mul(m.x, m.w1.Value)
	addRow(h, m.b1.Value)
	for i := 0; i < mlpBatch; i++ {
		row := h.RawRowView(i)
		for j, v := range row {
			row[j] = math.Tanh(v)
		}
	}
	g.logits.Mul(h, m.w2.Value)
	addRow(g.logits, m.b2.Value)

	// Loss and its gradient in one pass: d/dl [softplus(l) - x·l] = σ(l) - x,
	// sharing exp(-|l|) between softplus and the sigmoid.
	loss := 0.0
	for i := 0; i < mlpBatch; i++ {
		l, x, d := g.logits.RawRowView(i), m.x.RawRowView(i), g.dLogits.RawRowView(i)
		for j, v := range l {
			e := math.Exp(-math.Abs(v))
			sig := 1 / (1 + e)
			if v < 0 {
				sig = e / (1 + e)
			}
			loss += max(v, 0) + math.Log1p(e) - x[j]*v
			d[j] = sig - x[j]
		}
	}

	g.dW2.Mul(h.T(), g.dLogits)
	colSum(g.dB2, g.dLogits)
	g.dH.Mul(g.dLogits, m.w2.Value.T())
	for i := 0; i < mlpBatch; i++ {
		hr, dr := h.RawRowView(i), g.dH.RawRowView(i)
		for j, v := range hr {
			dr[j] *= 1 - v*v
		}
	}
	g.dW1.Mul(m.x.T(), g.dH)
	colSum(g.dB1, g.dH)
	return loss
}

// TestMLPStepMatchesGonum checks that the two benchmarks compute the same
// loss and gradients, so that their times are comparable.
func TestMLPStepMatchesGonum(t *testing.T) {
	m := newMLP(rand.New(rand.NewPCG(1, 2)))
	tp := ad.NewTape()
	g := newGonumMLP()
	for step := range 3 { // later steps run on recycled tape buffers
		for _, v := range m.params() {
			v.ZeroGrad()
		}
		tp.Reset()
		lossAD := m.stepAD(tp)
		lossGonum := g.step(m)
		require.InEpsilon(t, lossGonum, lossAD, 1e-12, "step %d", step)
		for i, want := range []*mat.Dense{g.dW1, g.dB1, g.dW2, g.dB2} {
			got := m.params()[i].Grad
			require.Truef(t, mat.EqualApprox(got, want, 1e-10), "step %d: gradient of parameter %d differs", step, i)
		}
	}
}

func BenchmarkMLPStep(b *testing.B) {
	m := newMLP(rand.New(rand.NewPCG(1, 2)))
	tp := ad.NewTape()
	m.stepAD(tp) // fill the tape's buffer pool: report the steady state
	b.ReportAllocs()
	for b.Loop() {
		tp.Reset()
		m.stepAD(tp)
	}
}

func BenchmarkMLPStepGonum(b *testing.B) {
	m := newMLP(rand.New(rand.NewPCG(1, 2)))
	g := newGonumMLP()
	g.step(m)
	b.ReportAllocs()
	for b.Loop() {
		g.step(m)
	}
}
