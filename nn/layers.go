package nn

import (
	"fmt"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
)

// Layer is anything with trainable parameters. Params returns them named
// relative to the layer ("W", "b", ...) until [Store.Register] gives them
// full names.
type Layer interface {
	Params() []*Param
}

func newParam(name string, rows, cols int, init Initializer, rng *rand.Rand) *Param {
	m := mat.NewDense(rows, cols, nil)
	init.Init(m, rng)
	return NewParam(name, m)
}

func checkSizes(layer string, sizes ...int) {
	for _, n := range sizes {
		if n <= 0 {
			panic(fmt.Sprintf("nn: %s: sizes must be positive, got %v", layer, sizes))
		}
	}
}

// Linear is an affine map x·W + b of a [B x in] batch to [B x out], with
// parameters "W" [in x out] and "b" [1 x out].
type Linear struct {
	W, B *Param
}

// NewLinear returns a Linear layer with Glorot-uniform weights drawn from
// rng and zero bias. It panics if a size is not positive or rng is nil.
func NewLinear(in, out int, rng *rand.Rand) *Linear {
	checkSizes("NewLinear", in, out)
	return &Linear{
		W: newParam("W", in, out, GlorotUniform{}, rng),
		B: newParam("b", 1, out, Zeros{}, nil),
	}
}

// Forward returns x·W + b on x's tape. It panics with an *[ad.ShapeError]
// if x does not have W's number of rows as columns.
func (l *Linear) Forward(x *ad.Tensor) *ad.Tensor {
	tp := x.Tape()
	return ad.Add(ad.MatMul(x, tp.Var(l.W.Var)), tp.Var(l.B.Var))
}

// Params returns W and b.
func (l *Linear) Params() []*Param { return []*Param{l.W, l.B} }

// Activation is an elementwise nonlinearity. The zero value is [Identity].
type Activation uint8

// The activations.
const (
	Identity Activation = iota
	Tanh
	ReLU
	Sigmoid
	Softplus
)

var activationNames = [...]string{"Identity", "Tanh", "ReLU", "Sigmoid", "Softplus"}

// String returns the activation's name.
func (a Activation) String() string {
	if int(a) < len(activationNames) {
		return activationNames[a]
	}
	return fmt.Sprintf("Activation(%d)", uint8(a))
}

// Apply returns a applied to x elementwise. It panics for a value that is
// not one of the constants.
func (a Activation) Apply(x *ad.Tensor) *ad.Tensor {
	switch a {
	case Identity:
		return x
	case Tanh:
		return ad.Tanh(x)
	case ReLU:
		return ad.ReLU(x)
	case Sigmoid:
		return ad.Sigmoid(x)
	case Softplus:
		return ad.Softplus(x)
	}
	panic(fmt.Sprintf("nn: unknown %v", a))
}

// MLP is a stack of [Linear] layers with an activation after each hidden
// layer; the output layer is linear. The parameters of layer i are named
// "i/W" and "i/b".
type MLP struct {
	Layers      []*Linear
	Activations []Activation // Activations[i] follows Layers[i]; one fewer than Layers
}

// NewMLP returns an MLP mapping sizes[0] inputs through hidden layers of
// sizes[1:len(sizes)-1] to sizes[len(sizes)-1] outputs, with activations[i]
// after hidden layer i. It panics if there are fewer than two sizes, a
// size is not positive, len(activations) != len(sizes)-2 or rng is nil.
func NewMLP(sizes []int, activations []Activation, rng *rand.Rand) *MLP {
	if len(sizes) < 2 {
		panic(fmt.Sprintf("nn: NewMLP: need at least an input and an output size, got %v", sizes))
	}
	checkSizes("NewMLP", sizes...)
	if len(activations) != len(sizes)-2 {
		panic(fmt.Sprintf("nn: NewMLP: %d hidden layers but %d activations", len(sizes)-2, len(activations)))
	}
	m := &MLP{Activations: append([]Activation(nil), activations...)}
	for i := 0; i+1 < len(sizes); i++ {
		l := NewLinear(sizes[i], sizes[i+1], rng)
		l.W.Name = fmt.Sprintf("%d/W", i)
		l.B.Name = fmt.Sprintf("%d/b", i)
		m.Layers = append(m.Layers, l)
	}
	return m
}

// Forward returns the network's output for the [B x sizes[0]] batch x.
func (m *MLP) Forward(x *ad.Tensor) *ad.Tensor {
	for i, l := range m.Layers {
		x = l.Forward(x)
		if i < len(m.Activations) {
			x = m.Activations[i].Apply(x)
		}
	}
	return x
}

// Params returns the parameters of every layer, in order.
func (m *MLP) Params() []*Param {
	out := make([]*Param, 0, 2*len(m.Layers))
	for _, l := range m.Layers {
		out = append(out, l.Params()...)
	}
	return out
}

// GRUCell is a gated recurrent unit (Cho et al., 2014). For an input x
// [B x in] and a state h [B x hidden] it computes
//
//	z  = σ(x·Wz + h·Uz + bz)           update gate
//	r  = σ(x·Wr + h·Ur + br)           reset gate
//	n  = tanh(x·Wn + (r ⊙ h)·Un + bn)  candidate
//	h' = (1 - z) ⊙ n + z ⊙ h
//
// The reset gate acts on h before the product with Un, as in the original
// paper (PyTorch applies it after). The parameters are named as above,
// with b for the biases: "Wz", "Uz", "bz", "Wr", "Ur", "br", "Wn", "Un",
// "bn".
type GRUCell struct {
	Wz, Uz, Bz *Param
	Wr, Ur, Br *Param
	Wn, Un, Bn *Param
}

// NewGRUCell returns a GRU cell with Glorot-uniform weights drawn from rng
// and zero biases. It panics if a size is not positive or rng is nil.
func NewGRUCell(in, hidden int, rng *rand.Rand) *GRUCell {
	checkSizes("NewGRUCell", in, hidden)
	g := GlorotUniform{}
	return &GRUCell{
		Wz: newParam("Wz", in, hidden, g, rng), Uz: newParam("Uz", hidden, hidden, g, rng), Bz: newParam("bz", 1, hidden, Zeros{}, nil),
		Wr: newParam("Wr", in, hidden, g, rng), Ur: newParam("Ur", hidden, hidden, g, rng), Br: newParam("br", 1, hidden, Zeros{}, nil),
		Wn: newParam("Wn", in, hidden, g, rng), Un: newParam("Un", hidden, hidden, g, rng), Bn: newParam("bn", 1, hidden, Zeros{}, nil),
	}
}

// Hidden returns the size of the state.
func (g *GRUCell) Hidden() int { _, c := g.Uz.Value.Dims(); return c }

// Forward returns the next state for input x and state h, which must be on
// the same tape. h may also be a single row [1 x hidden] shared by the
// batch. It panics with an *[ad.ShapeError] on a shape mismatch.
func (g *GRUCell) Forward(x, h *ad.Tensor) *ad.Tensor {
	tp := x.Tape()
	gate := func(w, u, b *Param, state *ad.Tensor) *ad.Tensor {
		return ad.Add(ad.Add(ad.MatMul(x, tp.Var(w.Var)), ad.MatMul(state, tp.Var(u.Var))), tp.Var(b.Var))
	}
	z := ad.Sigmoid(gate(g.Wz, g.Uz, g.Bz, h))
	r := ad.Sigmoid(gate(g.Wr, g.Ur, g.Br, h))
	n := ad.Tanh(gate(g.Wn, g.Un, g.Bn, ad.Mul(r, h)))
	// (1-z)⊙n + z⊙h = n + z⊙(h-n), one op fewer.
	return ad.Add(n, ad.Mul(z, ad.Sub(h, n)))
}

// Params returns the nine parameters in the order Wz, Uz, bz, Wr, Ur, br,
// Wn, Un, bn.
func (g *GRUCell) Params() []*Param {
	return []*Param{g.Wz, g.Uz, g.Bz, g.Wr, g.Ur, g.Br, g.Wn, g.Un, g.Bn}
}

// Embedding maps integer ids in [0, n) to rows of a table "W" [n x dim].
type Embedding struct {
	W *Param
}

// NewEmbedding returns an embedding of n ids in dim dimensions with
// standard-normal entries drawn from rng. It panics if a size is not
// positive or rng is nil.
func NewEmbedding(n, dim int, rng *rand.Rand) *Embedding {
	checkSizes("NewEmbedding", n, dim)
	return &Embedding{W: newParam("W", n, dim, Normal{Std: 1}, rng)}
}

// Forward returns the [B x dim] rows of W selected by idx, a [B x 1]
// tensor of integer-valued ids. It is computed as OneHot(idx)·W, which
// costs B·n·dim operations but needs no dedicated op, gives W an exact
// sparse gradient and gives the output idx's provenance. It panics if idx
// is not a column or an id is not an integer in [0, n).
func (e *Embedding) Forward(idx *ad.Tensor) *ad.Tensor {
	n, _ := e.W.Value.Dims()
	return ad.MatMul(ad.OneHot(idx, n), idx.Tape().Var(e.W.Var))
}

// Params returns W.
func (e *Embedding) Params() []*Param { return []*Param{e.W} }
