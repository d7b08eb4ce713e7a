package trace_test

import (
	"math"
	"math/rand/v2"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
)

// unitNormal is a minimal distribution for tests of graph structure that
// must not depend on the dist package: a normal with mean Loc and
// standard deviation 1, reparameterized.
type unitNormal struct{ Loc *ad.Tensor }

var _ dist.Reparameterized = unitNormal{}

func (d unitNormal) Sample(rng *rand.Rand) *ad.Tensor {
	return ad.StopGradient(d.RSample(rng))
}

func (d unitNormal) RSample(rng *rand.Rand) *ad.Tensor {
	r, c := d.Loc.Dims()
	eps := make([]float64, r*c)
	for i := range eps {
		eps[i] = rng.NormFloat64()
	}
	return ad.Add(d.Loc, d.Loc.Tape().FromData(r, c, eps))
}

func (d unitNormal) LogProb(v *ad.Tensor) *ad.Tensor {
	_, c := d.Loc.Dims()
	sq := ad.RowSum(ad.Square(ad.Sub(v, d.Loc)))
	return ad.Add(ad.Scale(sq, -0.5), v.Tape().Scalar(-0.5*float64(c)*math.Log(2*math.Pi)))
}

func (d unitNormal) Shape() (int, int) { return d.Loc.Dims() }
func (d unitNormal) Validate() error   { return nil }
func (d unitNormal) ValidateValue(v *ad.Tensor) error {
	return nil
}

// batch is the number of rows of the structural test models.
const batch = 3

// rv draws the random variable addr, a [batch x 1] normal whose mean is
// half the sum of parents: an SCG node with exactly those parents.
func rv(ctx *ppl.Ctx, addr string, parents ...*ad.Tensor) *ad.Tensor {
	loc := ctx.Tape().Zeros(batch, 1)
	for _, p := range parents {
		loc = ad.Add(loc, ad.Scale(p, 0.5))
	}
	return ppl.Sample(ctx, addr, unitNormal{Loc: loc})
}

// cost records the cost addr, the sum of squares of args: a cost node
// with exactly those arguments.
func cost(ctx *ppl.Ctx, addr string, args ...*ad.Tensor) {
	c := ctx.Tape().Zeros(batch, 1)
	for _, a := range args {
		c = ad.Add(c, ad.Square(a))
	}
	ppl.Cost(ctx, addr, c)
}

func seeded() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }

func rand2() *rand.Rand { return rand.New(rand.NewPCG(3, 4)) }
