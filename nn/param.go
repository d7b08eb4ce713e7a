package nn

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
)

// Param is a named trainable matrix: an [ad.Var] with the name that keys it
// in a [Store], in an optimizer's state and in checkpoints.
type Param struct {
	Name string
	*ad.Var
}

// NewParam returns a parameter holding value (not copied) with a zero
// gradient.
func NewParam(name string, value *mat.Dense) *Param {
	return &Param{Name: name, Var: ad.NewVar(value)}
}

// Initializer fills a new parameter's value. Random initializers draw from
// rng only, so the same seed gives the same values; they panic if rng is
// nil.
type Initializer interface {
	Init(m *mat.Dense, rng *rand.Rand)
}

// InitFunc adapts a function to an [Initializer].
type InitFunc func(m *mat.Dense, rng *rand.Rand)

// Init calls f(m, rng).
func (f InitFunc) Init(m *mat.Dense, rng *rand.Rand) { f(m, rng) }

// GlorotUniform draws each element uniformly from [-a, a] with
// a = sqrt(6 / (rows + cols)), the initialization of Glorot and Bengio
// (2010) for a weight used as x·W, whose rows are the fan-in and whose
// columns are the fan-out.
type GlorotUniform struct{}

// Init fills m.
func (GlorotUniform) Init(m *mat.Dense, rng *rand.Rand) {
	needRand("GlorotUniform", rng)
	r, c := m.Dims()
	a := math.Sqrt(6 / float64(r+c))
	fill(m, func() float64 { return a * (2*rng.Float64() - 1) })
}

// Zeros sets every element to zero.
type Zeros struct{}

// Init fills m.
func (Zeros) Init(m *mat.Dense, _ *rand.Rand) { m.Zero() }

// Normal draws each element from a normal distribution with mean zero and
// standard deviation Std.
type Normal struct {
	Std float64
}

// Init fills m.
func (n Normal) Init(m *mat.Dense, rng *rand.Rand) {
	needRand("Normal", rng)
	fill(m, func() float64 { return n.Std * rng.NormFloat64() })
}

// Constant sets every element to its value.
type Constant float64

// Init fills m.
func (c Constant) Init(m *mat.Dense, _ *rand.Rand) {
	fill(m, func() float64 { return float64(c) })
}

// fill sets the elements of m in row-major order, so that the draws of a
// random initializer do not depend on m's stride.
func fill(m *mat.Dense, f func() float64) {
	r, c := m.Dims()
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			m.Set(i, j, f())
		}
	}
}

func needRand(name string, rng *rand.Rand) {
	if rng == nil {
		panic(fmt.Sprintf("nn: %s: nil random source", name))
	}
}
