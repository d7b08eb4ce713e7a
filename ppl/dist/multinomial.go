package dist

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/backpropq/backpropq/ad"
)

// Multinomial is a batch of multinomial distributions, one per row: the
// counts of each of K classes in TotalCount independent draws from the
// categorical distribution with unnormalized log-probabilities Logits
// ([B x K], or a [1 x K] row shared by every row). A value is a [B x K]
// row of non-negative integer counts summing to TotalCount; the K columns
// are one event.
//
// Support: rows of non-negative integers summing to TotalCount; LogProb
// is -Inf at any other row.
type Multinomial struct {
	TotalCount int
	Logits     *ad.Tensor
}

// Shape returns the shape of Logits, [B x K].
func (d Multinomial) Shape() (batch, event int) { return shapeOf(d.Logits) }

// Sample draws count rows of shape [Multinomial.Shape], class by class as
// binomial draws of the remaining count.
func (d Multinomial) Sample(rng *rand.Rand) *ad.Tensor {
	rows, cols := d.Shape()
	probs := ad.Softmax(ad.StopGradient(d.Logits))
	pv := viewOf(probs)
	out := make([]float64, rows*cols)
	for i := range rows {
		left, mass := float64(d.TotalCount), 1.0
		for j := range cols {
			p := pv.at(i, j)
			var k float64
			switch {
			case j == cols-1:
				k = left
			case left > 0 && mass > 0:
				k = sampleBinomial(rng, left, min(p/mass, 1))
			}
			out[i*cols+j] = k
			left -= k
			mass -= p
		}
	}
	return d.Logits.Tape().FromData(rows, cols, out)
}

// LogProb returns log n! - Σ_k log x_k! + Σ_k x_k log softmax(Logits)_k
// per row, as [B x 1].
func (d Multinomial) LogProb(value *ad.Tensor) *ad.Tensor {
	tp := value.Tape()
	n := float64(d.TotalCount)
	lgN, _ := math.Lgamma(n + 1)
	ok := func(row []float64) bool { return countRowError(row, n) == "" }
	safe := value
	if !allRows(value, ok) {
		rows := constWithProv(tp, value.Rows(), 1, value.Provenance(), func(i, _ int) float64 {
			return b2f(ok(value.Data()[i*value.Cols() : (i+1)*value.Cols()]))
		})
		safe = ad.Where(rows, value, tp.Scalar(0))
	}
	lp := ad.RowSum(ad.Sub(ad.Mul(safe, ad.LogSoftmax(d.Logits)), ad.Lgamma(ad.Add(safe, tp.Scalar(1)))))
	return maskRows(ad.Add(lp, tp.Scalar(lgN)), value, ok)
}

func allRows(value *ad.Tensor, ok func([]float64) bool) bool {
	cols := value.Cols()
	for i := range value.Rows() {
		if !ok(value.Data()[i*cols : (i+1)*cols]) {
			return false
		}
	}
	return true
}

// countRowError says how row fails to hold counts summing to n, or "".
func countRowError(row []float64, n float64) string {
	sum := 0.0
	for _, v := range row {
		if !isNonNegativeInteger(v) {
			return "must hold non-negative integer counts"
		}
		sum += v
	}
	if sum != n {
		return fmt.Sprintf("must sum to total_count %v, sums to %v", n, sum)
	}
	return ""
}

// Mean returns n·softmax(Logits), [B x K].
func (d Multinomial) Mean() *ad.Tensor {
	return ad.Scale(ad.Softmax(d.Logits), float64(d.TotalCount))
}

// Validate reports nil or non-finite logits and a negative total count.
func (d Multinomial) Validate() error {
	if d.TotalCount < 0 {
		return &Error{Dist: "Multinomial", Name: "total_count", Rule: "must be >= 0", Got: float64(d.TotalCount), Row: 0, Col: 0}
	}
	return validateLogits("Multinomial", d.Logits)
}

// ValidateValue reports a value of the wrong shape or a row that is not
// counts summing to TotalCount.
func (d Multinomial) ValidateValue(value *ad.Tensor) error {
	rows, cols := d.Shape()
	if err := checkValueShape("Multinomial", value, d.Logits, rows, cols, true); err != nil {
		return err
	}
	for i := range value.Rows() {
		if msg := countRowError(value.Data()[i*cols:(i+1)*cols], float64(d.TotalCount)); msg != "" {
			return wholeErr("Multinomial", "value", "row %d %s", i, msg)
		}
	}
	return nil
}

// Support returns the rows of counts summing to TotalCount.
func (d Multinomial) Support() Constraint {
	return predicate{fmt.Sprintf("counts summing to %d", d.TotalCount), func(value *ad.Tensor, i int) bool {
		cols := value.Cols()
		return countRowError(value.Data()[i*cols:(i+1)*cols], float64(d.TotalCount)) == ""
	}}
}

// ParamConstraints returns logits: [Real] (TotalCount is an int field,
// checked by Validate to be >= 0).
func (Multinomial) ParamConstraints() map[string]Constraint { return params{"logits": Real} }
