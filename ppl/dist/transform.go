package dist

import (
	"math"

	"github.com/backpropq/backpropq/ad"
)

// Transform is a differentiable bijection y = f(x) between values, with
// the log-determinant of its Jacobian: what [Transformed] pushes a
// distribution through and what a constrained parameter is stored
// through ([BijectTo]). Rows are independent: f maps each row of x to the
// same row of y.
type Transform interface {
	// Forward returns y = f(x).
	Forward(x *ad.Tensor) *ad.Tensor
	// Inverse returns x = f⁻¹(y); it is NaN or infinite where y is
	// outside f's image.
	Inverse(y *ad.Tensor) *ad.Tensor
	// LogAbsDetJacobian returns log|det ∂y/∂x| of each row, [B x 1],
	// given x and y = Forward(x).
	LogAbsDetJacobian(x, y *ad.Tensor) *ad.Tensor
	// ForwardCols returns the columns of Forward(x) for x of cols columns.
	ForwardCols(cols int) int
	// InverseCols returns the columns of Inverse(y) for y of cols columns.
	InverseCols(cols int) int
}

// Identity is the transform y = x.
type Identity struct{}

// Forward returns x.
func (Identity) Forward(x *ad.Tensor) *ad.Tensor { return x }

// Inverse returns y.
func (Identity) Inverse(y *ad.Tensor) *ad.Tensor { return y }

// LogAbsDetJacobian returns zeros, [B x 1].
func (Identity) LogAbsDetJacobian(x, _ *ad.Tensor) *ad.Tensor { return x.Tape().Zeros(x.Rows(), 1) }

// ForwardCols returns cols.
func (Identity) ForwardCols(cols int) int { return cols }

// InverseCols returns cols.
func (Identity) InverseCols(cols int) int { return cols }

// Exp is the transform y = exp(x) elementwise, from the real line onto
// (0, ∞).
type Exp struct{}

// Forward returns exp(x).
func (Exp) Forward(x *ad.Tensor) *ad.Tensor { return ad.Exp(x) }

// Inverse returns log(y).
func (Exp) Inverse(y *ad.Tensor) *ad.Tensor { return ad.Log(y) }

// LogAbsDetJacobian returns Σ_j x_j per row.
func (Exp) LogAbsDetJacobian(x, _ *ad.Tensor) *ad.Tensor { return ad.RowSum(x) }

// ForwardCols returns cols.
func (Exp) ForwardCols(cols int) int { return cols }

// InverseCols returns cols.
func (Exp) InverseCols(cols int) int { return cols }

// Sigmoid is the logistic transform y = 1/(1+exp(-x)) elementwise, from
// the real line onto (0, 1).
type Sigmoid struct{}

// Forward returns sigmoid(x).
func (Sigmoid) Forward(x *ad.Tensor) *ad.Tensor { return ad.Sigmoid(x) }

// Inverse returns log y - log(1-y).
func (Sigmoid) Inverse(y *ad.Tensor) *ad.Tensor { return ad.Sub(ad.Log(y), ad.Log1p(ad.Neg(y))) }

// LogAbsDetJacobian returns Σ_j log σ(x_j) + log σ(-x_j) per row.
func (Sigmoid) LogAbsDetJacobian(x, _ *ad.Tensor) *ad.Tensor {
	return ad.RowSum(ad.Add(ad.LogSigmoid(x), ad.LogSigmoid(ad.Neg(x))))
}

// ForwardCols returns cols.
func (Sigmoid) ForwardCols(cols int) int { return cols }

// InverseCols returns cols.
func (Sigmoid) InverseCols(cols int) int { return cols }

// Affine is the transform y = Loc + Scale·x elementwise; Scale must not
// be 0.
type Affine struct {
	Loc, Scale float64
}

// Forward returns Loc + Scale·x.
func (t Affine) Forward(x *ad.Tensor) *ad.Tensor {
	return ad.Add(ad.Scale(x, t.Scale), x.Tape().Scalar(t.Loc))
}

// Inverse returns (y - Loc)/Scale.
func (t Affine) Inverse(y *ad.Tensor) *ad.Tensor {
	return ad.Scale(ad.Sub(y, y.Tape().Scalar(t.Loc)), 1/t.Scale)
}

// LogAbsDetJacobian returns D·log|Scale| per row for D columns.
func (t Affine) LogAbsDetJacobian(x, _ *ad.Tensor) *ad.Tensor {
	return x.Tape().Full(x.Rows(), 1, float64(x.Cols())*math.Log(math.Abs(t.Scale)))
}

// ForwardCols returns cols.
func (Affine) ForwardCols(cols int) int { return cols }

// InverseCols returns cols.
func (Affine) InverseCols(cols int) int { return cols }

// Compose is the transform that applies its parts in order: Forward is
// parts[n-1](...parts[0](x)).
type Compose []Transform

// Forward applies the parts in order.
func (c Compose) Forward(x *ad.Tensor) *ad.Tensor {
	for _, t := range c {
		x = t.Forward(x)
	}
	return x
}

// Inverse applies the parts' inverses in reverse order.
func (c Compose) Inverse(y *ad.Tensor) *ad.Tensor {
	for k := len(c) - 1; k >= 0; k-- {
		y = c[k].Inverse(y)
	}
	return y
}

// LogAbsDetJacobian sums the parts' log-determinants at the intermediate
// values, recomputed from x.
func (c Compose) LogAbsDetJacobian(x, _ *ad.Tensor) *ad.Tensor {
	var sum *ad.Tensor
	for _, t := range c {
		y := t.Forward(x)
		l := t.LogAbsDetJacobian(x, y)
		if sum == nil {
			sum = l
		} else {
			sum = ad.Add(sum, l)
		}
		x = y
	}
	if sum == nil {
		return x.Tape().Zeros(x.Rows(), 1)
	}
	return sum
}

// ForwardCols chains the parts' column counts.
func (c Compose) ForwardCols(cols int) int {
	for _, t := range c {
		cols = t.ForwardCols(cols)
	}
	return cols
}

// InverseCols chains the parts' column counts in reverse.
func (c Compose) InverseCols(cols int) int {
	for k := len(c) - 1; k >= 0; k-- {
		cols = c[k].InverseCols(cols)
	}
	return cols
}

// StickBreaking maps each row of K-1 unconstrained numbers onto the
// simplex of K columns: with z_i = sigmoid(x_i - log(K-1-i)),
// y_i = z_i·Π_{j<i}(1-z_j) and y_{K-1} = Π_j (1-z_j). The offsets make
// x = 0 map to the uniform point 1/K.
type StickBreaking struct{}

// offsets returns the row log(K-1-i), i = 0..K-2, for cols = K-1.
func stickOffsets(tp *ad.Tape, cols int) *ad.Tensor {
	return fill(tp, 1, cols, func(_, i int) float64 { return math.Log(float64(cols - i)) })
}

// exclusiveCumsum returns the exclusive cumulative sum along each row,
// Σ_{j<i} x_j, as x·U with U strictly upper triangular ones.
func exclusiveCumsum(x *ad.Tensor) *ad.Tensor {
	n := x.Cols()
	u := fill(x.Tape(), n, n, func(j, i int) float64 { return b2f(j < i) })
	return ad.MatMul(x, u)
}

// Forward returns the [B x K] simplex rows of [B x (K-1)] x.
func (StickBreaking) Forward(x *ad.Tensor) *ad.Tensor {
	shifted := ad.Sub(x, stickOffsets(x.Tape(), x.Cols()))
	logRest := ad.LogSigmoid(ad.Neg(shifted)) // log(1 - z)
	prefix := exclusiveCumsum(logRest)
	logY := ad.Add(ad.LogSigmoid(shifted), prefix)
	return ad.Exp(ad.Concat(logY, ad.RowSum(logRest)))
}

// Inverse returns the [B x (K-1)] unconstrained rows of [B x K] simplex
// rows y: x_i = logit(y_i / (1 - Σ_{j<i} y_j)) + log(K-1-i).
func (StickBreaking) Inverse(y *ad.Tensor) *ad.Tensor {
	head := ad.Slice(y, 0, y.Cols()-1)
	rest := ad.Sub(y.Tape().Scalar(1), exclusiveCumsum(head))
	// logit(y_i/r_i) = log y_i - log(r_i - y_i)
	return ad.Add(ad.Sub(ad.Log(head), ad.Log(ad.Sub(rest, head))), stickOffsets(y.Tape(), head.Cols()))
}

// LogAbsDetJacobian returns the log-determinant of the map from x to the
// first K-1 columns of y (the last is determined by them), per row:
// Σ_i log z_i + log(1-z_i) + Σ_{j<i} log(1-z_j).
func (StickBreaking) LogAbsDetJacobian(x, _ *ad.Tensor) *ad.Tensor {
	shifted := ad.Sub(x, stickOffsets(x.Tape(), x.Cols()))
	logRest := ad.LogSigmoid(ad.Neg(shifted))
	terms := ad.Add(ad.Add(ad.LogSigmoid(shifted), logRest), exclusiveCumsum(logRest))
	return ad.RowSum(terms)
}

// ForwardCols returns cols + 1.
func (StickBreaking) ForwardCols(cols int) int { return cols + 1 }

// InverseCols returns cols - 1.
func (StickBreaking) InverseCols(cols int) int { return cols - 1 }

// LowerCholeskyTransform maps a square matrix x onto a lower Cholesky
// factor: the strict lower triangle of x, exp of its diagonal, and zeros
// above (the upper triangle of x is not read). Its inverse is the strict
// lower triangle and the log of the diagonal.
type LowerCholeskyTransform struct{}

func triMasks(tp *ad.Tape, n int) (strict, diag *ad.Tensor) {
	strict = fill(tp, n, n, func(i, j int) float64 { return b2f(j < i) })
	diag = fill(tp, n, n, func(i, j int) float64 { return b2f(j == i) })
	return strict, diag
}

// Forward returns tril(x, -1) + diag(exp(diag x)).
func (LowerCholeskyTransform) Forward(x *ad.Tensor) *ad.Tensor {
	strict, diag := triMasks(x.Tape(), x.Rows())
	return ad.Add(ad.Mul(x, strict), ad.Mul(ad.Exp(x), diag))
}

// Inverse returns tril(y, -1) + diag(log(diag y)).
func (LowerCholeskyTransform) Inverse(y *ad.Tensor) *ad.Tensor {
	strict, diag := triMasks(y.Tape(), y.Rows())
	one := y.Tape().Scalar(1)
	return ad.Add(ad.Mul(y, strict), ad.Mul(ad.Log(ad.Where(diag, y, one)), diag))
}

// LogAbsDetJacobian returns x_ii for row i, [D x 1]: the rows sum to the
// log-determinant of the map from the lower triangle of x to that of y.
func (LowerCholeskyTransform) LogAbsDetJacobian(x, _ *ad.Tensor) *ad.Tensor {
	_, diag := triMasks(x.Tape(), x.Rows())
	return ad.RowSum(ad.Mul(x, diag))
}

// ForwardCols returns cols.
func (LowerCholeskyTransform) ForwardCols(cols int) int { return cols }

// InverseCols returns cols.
func (LowerCholeskyTransform) InverseCols(cols int) int { return cols }
