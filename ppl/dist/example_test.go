package dist_test

import (
	"errors"
	"fmt"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/ppl/dist"
)

// A Normal scores values and draws pathwise samples whose gradient
// reaches its parameters.
func ExampleNormal() {
	tp := ad.NewTape()
	loc := ad.NewVar(mat.NewDense(1, 1, []float64{1}))
	scale := ad.NewVar(mat.NewDense(1, 1, []float64{2}))
	d := dist.Normal{Loc: tp.Var(loc), Scale: tp.Var(scale)}

	lp := d.LogProb(tp.FromData(2, 1, []float64{1, 3}))
	fmt.Printf("log p(1) = %.4f, log p(3) = %.4f\n", lp.At(0, 0), lp.At(1, 0))
	fmt.Printf("entropy = %.4f\n", d.Entropy().Item())

	// E[z²] = loc² + scale², so its gradient is (2·loc, 2·scale) = (2, 4).
	// Broadcasting loc to 10000 rows draws 10000 samples.
	many := dist.Normal{Loc: ad.Add(tp.Var(loc), tp.Zeros(10000, 1)), Scale: tp.Var(scale)}
	z := many.RSample(rand.New(rand.NewPCG(1, 2)))
	tp.Backward(ad.Mean(ad.Square(z)))
	fmt.Printf("d/dloc ≈ %.1f, d/dscale ≈ %.1f\n", loc.Grad.At(0, 0), scale.Grad.At(0, 0))
	// Output:
	// log p(1) = -1.6121, log p(3) = -2.1121
	// entropy = 2.1121
	// d/dloc ≈ 2.0, d/dscale ≈ 4.0
}

// A Bernoulli from logits scores 0/1 values stably; BernoulliProbs takes
// probabilities instead.
func ExampleBernoulliLogits() {
	tp := ad.NewTape()
	d := dist.BernoulliLogits(tp.FromData(1, 3, []float64{0, 2, -50}))
	x := tp.FromData(1, 3, []float64{1, 1, 0})
	fmt.Printf("log p = %.4f\n", d.LogProb(x).Item())
	fmt.Printf("mean = %.4f\n", d.Mean().Data())
	fmt.Println("sample:", d.Sample(rand.New(rand.NewPCG(1, 2))).Data())

	p := dist.BernoulliProbs(tp.FromData(1, 2, []float64{0.5, 1}))
	fmt.Printf("entropy = %.4f\n", p.Entropy().Item())
	// Output:
	// log p = -0.8201
	// mean = [0.5000 0.8808 0.0000]
	// sample: [0 1 0]
	// entropy = 0.6931
}

// A Categorical's values are class indices, one per row; a [1 x K] row
// of logits is shared by every row of the value.
func ExampleCategorical() {
	tp := ad.NewTape()
	d := dist.Categorical{Logits: tp.FromData(1, 3, []float64{0, 1, 2})}
	lp := d.LogProb(tp.FromData(3, 1, []float64{0, 1, 2}))
	fmt.Printf("log p = %.4f\n", lp.Data())
	fmt.Printf("probs = %.4f\n", d.Probs().Data())
	fmt.Printf("entropy = %.4f\n", d.Entropy().Item())
	// Output:
	// log p = [-2.4076 -1.4076 -0.4076]
	// probs = [0.0900 0.2447 0.6652]
	// entropy = 0.8324
}

// A OneHotCategorical is the same distribution with one-hot values.
func ExampleOneHotCategorical() {
	tp := ad.NewTape()
	d := dist.OneHotCategorical{Logits: tp.FromData(1, 3, []float64{0, 1, 2})}
	x := d.Sample(rand.New(rand.NewPCG(1, 2)))
	fmt.Println("sample:", x.Data())
	fmt.Printf("log p = %.4f\n", d.LogProb(x).Item())
	// Output:
	// sample: [0 0 1]
	// log p = -0.4076
}

// The REBAR/RELAX construction for a Bernoulli: a relaxed sample z with
// its hard value b = H(z), and a second relaxed sample z~ drawn given b,
// both differentiable in the logits.
func ExampleBernoulli_RelaxedSample() {
	tp := ad.NewTape()
	logits := ad.NewVar(mat.NewDense(1, 4, []float64{-2, -0.5, 0.5, 2}))
	d := dist.BernoulliLogits(tp.Var(logits))
	rng := rand.New(rand.NewPCG(1, 2))

	z, b := d.RelaxedSample(rng)
	zt := d.ConditionalRelaxedSample(b, rng)
	fmt.Println("b      =", b.Data())
	fmt.Println("H(z~)  =", d.Hard(zt).Data())
	fmt.Println("z~ has a gradient:", zt.RequiresGrad(), "z too:", z.RequiresGrad())
	// Output:
	// b      = [0 0 1 1]
	// H(z~)  = [0 0 1 1]
	// z~ has a gradient: true z too: true
}

// The conditional Gumbel sample of a Categorical has its maximum exactly
// at the given class, however unlikely the class is.
func ExampleCategorical_ConditionalRelaxedSample() {
	tp := ad.NewTape()
	d := dist.Categorical{Logits: tp.FromData(1, 3, []float64{-20, 0, 20})}
	b := tp.FromData(3, 1, []float64{0, 1, 2})
	zt := d.ConditionalRelaxedSample(b, rand.New(rand.NewPCG(1, 2)))
	fmt.Println("argmax z~ =", d.Hard(zt).Data())
	// Output:
	// argmax z~ = [0 1 2]
}

// A RelaxedBernoulli (binary Concrete) sample lies in (0, 1) and nears
// {0, 1} at low temperature; the temperature can be learned.
func ExampleRelaxedBernoulli() {
	tp := ad.NewTape()
	logits := tp.FromData(1, 4, []float64{-1, 0, 0, 1})
	for _, temp := range []float64{5, 0.01} {
		d := dist.RelaxedBernoulli{Logits: logits, Temperature: tp.Scalar(temp)}
		x := d.RSample(rand.New(rand.NewPCG(1, 2)))
		fmt.Printf("temperature %v: %.3f\n", temp, x.Data())
	}
	temp := ad.NewVar(mat.NewDense(1, 1, []float64{0.5}))
	d := dist.RelaxedBernoulli{Logits: logits, Temperature: tp.Var(temp)}
	tp.Backward(ad.Sum(d.LogProb(tp.FromData(1, 4, []float64{0.1, 0.5, 0.9, 0.99}))))
	fmt.Printf("d log p / d temperature = %.3f\n", temp.Grad.At(0, 0))
	// Output:
	// temperature 5: [0.487 0.492 0.502 0.536]
	// temperature 0.01: [0.000 0.000 0.968 1.000]
	// d log p / d temperature = 4.170
}

// A RelaxedOneHotCategorical (Gumbel-softmax) sample lies on the simplex
// and nears a one-hot vector at low temperature.
func ExampleRelaxedOneHotCategorical() {
	tp := ad.NewTape()
	logits := tp.FromData(1, 3, []float64{0, 1, 2})
	for _, temp := range []float64{10, 0.1} {
		d := dist.RelaxedOneHotCategorical{Logits: logits, Temperature: tp.Scalar(temp)}
		x := d.RSample(rand.New(rand.NewPCG(1, 2)))
		fmt.Printf("temperature %v: %.3f, log p = %.2f\n", temp, x.Data(), d.LogProb(x).Item())
	}
	// Output:
	// temperature 10: [0.314 0.324 0.363], log p = 5.18
	// temperature 0.1: [0.000 0.000 1.000], log p = 18.53
}

// A Uniform has a constant density on [Low, High] and -Inf outside.
func ExampleUniform() {
	tp := ad.NewTape()
	d := dist.Uniform{Low: tp.Scalar(0), High: tp.Scalar(4)}
	lp := d.LogProb(tp.FromData(2, 1, []float64{1, 5}))
	fmt.Printf("log p = %.4f, mean = %v\n", lp.Data(), d.Mean().Item())
	// Output:
	// log p = [-1.3863 -Inf], mean = 2
}

// A Delta puts all its mass on Value: log p is 0 there and -Inf
// elsewhere, and RSample returns Value itself.
func ExampleDelta() {
	tp := ad.NewTape()
	point := tp.FromData(1, 2, []float64{1, 2})
	d := dist.Delta{Value: point}
	lp := d.LogProb(tp.FromData(2, 2, []float64{1, 2, 1, 3}))
	fmt.Println("log p =", lp.Data())
	fmt.Println("RSample is Value:", d.RSample(nil) == point)
	// Output:
	// log p = [0 -Inf]
	// RSample is Value: true
}

// KL gives closed-form divergences between two distributions of a family,
// and an error for other pairs.
func ExampleKL() {
	tp := ad.NewTape()
	p := dist.Normal{Loc: tp.Scalar(0), Scale: tp.Scalar(1)}
	q := dist.Normal{Loc: tp.Scalar(1), Scale: tp.Scalar(2)}
	kl, _ := dist.KL(p, q)
	fmt.Printf("KL(p || q) = %.4f\n", kl.Item())

	_, err := dist.KL(p, dist.BernoulliLogits(tp.Scalar(0)))
	fmt.Println(err)
	fmt.Println(errors.Is(err, dist.ErrNoKL))
	// Output:
	// KL(p || q) = 0.4431
	// dist: KL(dist.Normal, dist.Bernoulli): no closed-form KL divergence
	// true
}

// Validate and ValidateValue say which parameter or value is wrong, where
// and how.
func ExampleError() {
	tp := ad.NewTape()
	d := dist.Normal{Loc: tp.Zeros(4, 1), Scale: tp.FromData(4, 1, []float64{1, 1, 1, -1})}
	fmt.Println(d.Validate())

	b := dist.BernoulliProbs(tp.Scalar(0.3))
	err := b.ValidateValue(tp.FromData(1, 2, []float64{1, 0.5}))
	fmt.Println(err)
	var de *dist.Error
	if errors.As(err, &de) {
		fmt.Println(de.Name, de.Row, de.Col, de.Got)
	}
	// Output:
	// dist: Normal: scale must be > 0 and finite, got -1 at row 3, column 0
	// dist: Bernoulli: value must be 0 or 1, got 0.5 at row 0, column 1
	// value 0 1 0.5
}
