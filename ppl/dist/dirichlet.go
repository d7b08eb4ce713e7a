package dist

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/backpropq/backpropq/ad"
)

// Dirichlet is a batch of Dirichlet distributions over the probability
// simplex, one per row: a value is a [B x K] row of non-negative numbers
// summing to 1, and the K columns are one event. Concentration (α) is
// [B x K] or a [1 x K] row shared by every row; it must be > 0 and finite,
// and K >= 2. The density is Γ(Σα) Π_k x_k^(α_k-1) / Π_k Γ(α_k).
//
// Support: the simplex {x_k >= 0, Σ_k x_k = 1}. At a face (some x_k = 0)
// LogProb is the density's limit; a row with a negative entry or whose sum
// is farther than 1e-6 from 1 has log-probability -Inf.
//
// Dirichlet is [Reparameterized]: RSample normalizes K implicitly
// reparameterized gamma draws (see [Gamma]).
type Dirichlet struct {
	Concentration *ad.Tensor
}

// Shape returns the shape of Concentration, [B x K].
func (d Dirichlet) Shape() (batch, event int) { return shapeOf(d.Concentration) }

// Sample draws a value of shape [Dirichlet.Shape] without a gradient path.
// With the same source it returns the same numbers as [Dirichlet.RSample].
func (d Dirichlet) Sample(rng *rand.Rand) *ad.Tensor {
	rows, cols := d.Shape()
	a := viewOf(d.Concentration)
	g := make([]float64, rows*cols)
	for i := range rows {
		sum := 0.0
		for j := range cols {
			g[i*cols+j] = standardGamma(rng, a.at(i, j))
			sum += g[i*cols+j]
		}
		for j := range cols {
			g[i*cols+j] /= sum
		}
	}
	return d.Concentration.Tape().FromData(rows, cols, g)
}

// RSample draws g/Σg with g implicitly reparameterized gamma draws,
// differentiable in Concentration.
func (d Dirichlet) RSample(rng *rand.Rand) *ad.Tensor {
	rows, cols := d.Shape()
	g := rsampleStandardGamma(expand(d.Concentration, rows, cols), rng)
	return ad.Div(g, ad.RowSum(g))
}

// LogProb returns log p(value) per row, as [B x 1], with the edge values
// described on [Dirichlet]. It panics with a *ad.ShapeError if value's
// columns differ from Concentration's.
func (d Dirichlet) LogProb(value *ad.Tensor) *ad.Tensor {
	a := d.Concentration
	rows, cols := shapeOf(value, a)
	if value.Cols() != a.Cols() {
		panic(&ad.ShapeError{Op: "Dirichlet.LogProb", A: [2]int{value.Rows(), value.Cols()}, B: [2]int{a.Rows(), a.Cols()}})
	}
	norm := ad.Sub(ad.Lgamma(ad.RowSum(a)), ad.RowSum(ad.Lgamma(a)))
	lp := ad.Add(ad.RowSum(maskedLogProb(value, rows, cols, isNonNegative, 1.0/float64(cols), func(x *ad.Tensor) *ad.Tensor {
		return xlogy(ad.Sub(a, a.Tape().Scalar(1)), x)
	})), norm)
	return maskRows(lp, value, func(row []float64) bool { return simplexRowError(row) == "" })
}

// maskRows sets the rows of lp ([B x 1]) whose value row fails ok to -Inf.
func maskRows(lp, value *ad.Tensor, ok func(row []float64) bool) *ad.Tensor {
	cols := value.Cols()
	data := value.Data()
	allOK := true
	for i := range value.Rows() {
		if !ok(data[i*cols : (i+1)*cols]) {
			allOK = false
			break
		}
	}
	if allOK {
		return lp
	}
	tp := value.Tape()
	mask := constWithProv(tp, value.Rows(), 1, value.Provenance(), func(i, _ int) float64 {
		return b2f(ok(data[i*cols : (i+1)*cols]))
	})
	return ad.Where(mask, lp, tp.Scalar(math.Inf(-1)))
}

// simplexRowError says how row fails to be a point of the simplex, or ""
// if it is one.
func simplexRowError(row []float64) string {
	sum := 0.0
	for _, v := range row {
		if !(v >= 0) || math.IsInf(v, 1) {
			return "must have entries >= 0"
		}
		sum += v
	}
	if math.Abs(sum-1) > simplexTol {
		return fmt.Sprintf("must sum to 1 (within %g), sums to %v", simplexTol, sum)
	}
	return ""
}

// Mean returns α/Σα per row, [B x K].
func (d Dirichlet) Mean() *ad.Tensor {
	return ad.Div(d.Concentration, ad.RowSum(d.Concentration))
}

// Entropy returns log B(α) + (α₀-K)ψ(α₀) - Σ_k (α_k-1)ψ(α_k) per row, as
// [B x 1], with α₀ = Σα and log B(α) = Σ log Γ(α_k) - log Γ(α₀).
func (d Dirichlet) Entropy() *ad.Tensor {
	a := d.Concentration
	k := float64(a.Cols())
	a0 := ad.RowSum(a)
	logB := ad.Sub(ad.RowSum(ad.Lgamma(a)), ad.Lgamma(a0))
	h := ad.Add(logB, ad.Mul(ad.Sub(a0, a.Tape().Scalar(k)), ad.Digamma(a0)))
	return ad.Sub(h, ad.RowSum(ad.Mul(ad.Sub(a, a.Tape().Scalar(1)), ad.Digamma(a))))
}

// Validate reports a nil concentration, fewer than 2 columns, and an
// element that is not > 0 and finite.
func (d Dirichlet) Validate() error {
	if d.Concentration == nil {
		return wholeErr("Dirichlet", "concentration", "is nil")
	}
	if d.Concentration.Cols() < 2 {
		return wholeErr("Dirichlet", "concentration", "must have at least 2 columns, got %d", d.Concentration.Cols())
	}
	return checkElems("Dirichlet", "concentration", d.Concentration, rulePositive, isPositive)
}

// ValidateValue reports a value of the wrong shape or a row that is not
// a point of the simplex.
func (d Dirichlet) ValidateValue(value *ad.Tensor) error {
	return validateSimplexValue("Dirichlet", d, d.Concentration, value)
}

func validateSimplexValue(dist string, d Distribution, anyParam, value *ad.Tensor) error {
	rows, cols := d.Shape()
	if err := checkValueShape(dist, value, anyParam, rows, cols, true); err != nil {
		return err
	}
	for i := range value.Rows() {
		if msg := simplexRowError(value.Data()[i*cols : (i+1)*cols]); msg != "" {
			return wholeErr(dist, "value", "row %d %s", i, msg)
		}
	}
	return nil
}
