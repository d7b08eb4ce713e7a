package ad_test

import (
	"fmt"
	"sync"

	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
)

// A least-squares regression fitted by gradient descent: one tape, reset
// every step, with the weights as Vars.
func Example() {
	x := mat.NewDense(4, 1, []float64{0, 1, 2, 3})
	y := mat.NewDense(4, 1, []float64{1, 3, 5, 7}) // y = 2x + 1
	w := ad.NewVar(mat.NewDense(1, 1, []float64{0}))
	b := ad.NewVar(mat.NewDense(1, 1, []float64{0}))

	tp := ad.NewTape()
	for step := range 200 {
		tp.Reset()
		w.ZeroGrad()
		b.ZeroGrad()
		pred := ad.Add(ad.MatMul(tp.Const(x), tp.Var(w)), tp.Var(b))
		loss := ad.Mean(ad.Square(ad.Sub(pred, tp.Const(y))))
		tp.Backward(loss)
		w.Value.Apply(func(i, j int, v float64) float64 { return v - 0.1*w.Grad.At(i, j) }, w.Value)
		b.Value.Apply(func(i, j int, v float64) float64 { return v - 0.1*b.Grad.At(i, j) }, b.Value)
		if step == 0 {
			fmt.Printf("first loss %.2f\n", loss.Item())
		}
	}
	fmt.Printf("w %.3f b %.3f\n", w.Value.At(0, 0), b.Value.At(0, 0))
	// Output:
	// first loss 21.00
	// w 2.000 b 1.000
}

// Gradients gives the derivative of a loss with respect to an
// intermediate tensor, here a sampled value z, without touching any Var.
func ExampleTape_Gradients() {
	tp := ad.NewTape()
	loc := ad.NewVar(mat.NewDense(1, 2, []float64{1, -1}))
	eps := tp.FromData(1, 2, []float64{0.5, 0.5})
	z := ad.Add(tp.Var(loc), eps) // a reparameterized sample
	q := ad.Sum(ad.Square(z))     // a cost of z

	g := tp.Gradients(q, z)
	fmt.Println("dq/dz:", g[0].RawMatrix().Data) // 2z
	fmt.Println("Var grad untouched:", mat.Norm(loc.Grad, 1) == 0)
	// Output:
	// dq/dz: [3 -1]
	// Var grad untouched: true
}

// Provenance follows the data: an op's output depends on the union of its
// inputs' sites, a stop-gradient keeps it, and WithProvenance sets it.
func ExampleTape_WithProvenance() {
	tp := ad.NewTape()
	z1 := tp.WithProvenance(tp.Scalar(0.3), ad.ProvenanceOf(1))
	z2 := tp.WithProvenance(tp.Scalar(0.8), ad.ProvenanceOf(2))
	h := ad.Mul(z1, ad.Exp(z2))
	fmt.Println(h.Provenance())
	fmt.Println(ad.StopGradient(h).Provenance())
	fmt.Println(ad.Add(h, tp.Scalar(1)).Provenance())
	// A new sample depending on h is its own site, 3.
	z3 := tp.WithProvenance(ad.Sigmoid(h), ad.ProvenanceOf(3))
	fmt.Println(z3.Provenance(), "parents", h.Provenance())
	// Output:
	// {1,2}
	// {1,2}
	// {1,2}
	// {3} parents {1,2}
}

func ExampleProvenance() {
	p := ad.ProvenanceOf(4, 1, 130)
	q := ad.ProvenanceOf(1, 2)
	fmt.Println(p, p.Len(), p.Has(130))
	fmt.Println(p.Union(q), p.Minus(q), q.SubsetOf(p))
	// Output:
	// {1,4,130} 3 true
	// {1,2,4,130} {4,130} false
}

// StopGradient passes the value on but blocks the gradient: the
// derivative of sg(x)·x is sg(x), not 2x.
func ExampleStopGradient() {
	tp := ad.NewTape()
	v := ad.NewVar(mat.NewDense(1, 1, []float64{3}))
	x := tp.Var(v)
	tp.Backward(ad.Mul(ad.StopGradient(x), x))
	fmt.Println(v.Grad.At(0, 0))
	// Output:
	// 3
}

// Broadcasting: a [1xD] row is added to every row, a [Bx1] column scales
// each row.
func ExampleAdd() {
	tp := ad.NewTape()
	x := tp.FromData(2, 3, []float64{1, 2, 3, 4, 5, 6})
	bias := tp.FromData(1, 3, []float64{10, 20, 30})
	w := tp.FromData(2, 1, []float64{1, -1})
	fmt.Println(mat.Formatted(ad.Mul(ad.Add(x, bias), w).Value()))
	// Output:
	// ⎡ 11   22   33⎤
	// ⎣-14  -25  -36⎦
}

// Gather picks one column per row, as the log-probability of a sampled
// class; Where selects between two tensors by a mask.
func ExampleGather() {
	tp := ad.NewTape()
	logp := ad.LogSoftmax(tp.FromData(2, 3, []float64{0, 0, 0, 1, 2, 3}))
	class := tp.FromData(2, 1, []float64{1, 2})
	fmt.Printf("%.4f\n", ad.Gather(logp, class).Data())
	mask := tp.FromData(2, 1, []float64{1, 0})
	fmt.Println(ad.Where(mask, tp.Full(2, 2, 1), tp.Full(2, 2, -1)).Data())
	// Output:
	// [-1.0986 -0.4076]
	// [1 1 -1 -1]
}

// ComputeGradients and AccumulateGradients split Backward so that shards
// of a batch run on their own tapes in parallel while the summed gradient
// stays independent of scheduling.
func ExampleTape_ComputeGradients() {
	w := ad.NewVar(mat.NewDense(1, 1, []float64{2}))
	shards := [][]float64{{1, 2}, {3}, {4, 5, 6}}
	tapes := make([]*ad.Tape, len(shards))
	var wg sync.WaitGroup
	for i, xs := range shards {
		wg.Go(func() {
			tp := ad.NewTape()
			x := tp.FromData(len(xs), 1, xs)
			tp.ComputeGradients(ad.Sum(ad.MatMul(x, tp.Var(w)))) // Σ w·x
			tapes[i] = tp
		})
	}
	wg.Wait()
	for _, tp := range tapes { // a fixed order
		tp.AccumulateGradients()
	}
	fmt.Println(w.Grad.At(0, 0)) // Σ x
	// Output:
	// 21
}
