package dist

import (
	"fmt"
	"math"

	"github.com/backpropq/backpropq/ad"
)

// Encoding says how a value of a [Finite] distribution writes a point of
// its support.
type Encoding int

const (
	// Binary values are 0/1 in every column, one independent binary
	// variable per column ([Bernoulli]). A row of D columns takes 2^D
	// values.
	Binary Encoding = iota + 1
	// Index values are one column holding a class index 0..K-1 as a float
	// ([Categorical]). A row takes K values.
	Index
	// OneHot values are K columns holding a one-hot row
	// ([OneHotCategorical]). A row takes K values.
	OneHot
	// Count values are counts 0..n held as floats, one independent count
	// variable per column, each over the same n+1 values ([Binomial] with
	// one total count). A row of D columns takes (n+1)^D values.
	Count
)

// String returns the encoding's name: "binary", "index" or "one-hot".
func (e Encoding) String() string {
	switch e {
	case Binary:
		return "binary"
	case Index:
		return "index"
	case OneHot:
		return "one-hot"
	case Count:
		return "count"
	}
	return fmt.Sprintf("Encoding(%d)", int(e))
}

// MaxSupportSize is the largest support [Finite.EnumerateSupport]
// enumerates.
const MaxSupportSize = 1 << 20

// Finite is a discrete [Distribution] whose rows each take one of finitely
// many values. Estimators that enumerate a site, featurize its value for
// a critic or need to know whether a value is an index or a one-hot row
// ask for this capability instead of switching on concrete types, so a
// distribution passed by pointer behaves as the same distribution passed
// by value: the implementations in this package have value receivers, so
// both *Bernoulli and Bernoulli are Finite.
//
// [Bernoulli], [Categorical], [OneHotCategorical] and [Binomial] (when
// its total count is the same everywhere) implement it.
type Finite interface {
	Distribution
	// Encoding returns how a value encodes a point of the support.
	Encoding() Encoding
	// Classes returns the number of values one variable takes: 2 for
	// [Binary] (each column is a variable), K for [Index] and [OneHot]
	// (the row is one variable over K classes), n+1 for [Count] (each
	// column is a variable).
	Classes() int
	// SupportSize returns the number of points of one row's support:
	// 2^D for [Binary] with D columns, K for [Index] and [OneHot],
	// (n+1)^D for [Count]. It saturates at math.MaxInt.
	SupportSize() int
	// EnumerateSupport returns every point of one row's support, in a
	// fixed order, each a new constant [rows x D] tensor on tp that holds
	// the same point in every row (D is the value's column count: the
	// Bernoulli's D, 1 for Index, K for OneHot, the Binomial's D for
	// Count). For Binary, point n sets column j to bit j of n; for Count,
	// to digit j of n in base Classes; for Index and OneHot, point k is
	// class k.
	// It panics if SupportSize exceeds [MaxSupportSize]; callers that
	// accept a smaller support check SupportSize first.
	EnumerateSupport(tp *ad.Tape, rows int) []*ad.Tensor
}

// Interface checks: the value and the pointer forms are both Finite.
var (
	_ Finite = Bernoulli{}
	_ Finite = (*Bernoulli)(nil)
	_ Finite = Categorical{}
	_ Finite = (*Categorical)(nil)
	_ Finite = OneHotCategorical{}
	_ Finite = (*OneHotCategorical)(nil)
	_ Finite = Binomial{}
	_ Finite = (*Binomial)(nil)
)

// Encoding returns [Binary].
func (Bernoulli) Encoding() Encoding { return Binary }

// Classes returns 2.
func (Bernoulli) Classes() int { return 2 }

// SupportSize returns 2^D for D columns, saturating at math.MaxInt.
func (d Bernoulli) SupportSize() int {
	_, cols := d.Shape()
	if cols >= 63 {
		return math.MaxInt
	}
	return 1 << cols
}

// EnumerateSupport returns the 2^D 0/1 rows, point n having bit j of n in
// column j, as described on [Finite].
func (d Bernoulli) EnumerateSupport(tp *ad.Tape, rows int) []*ad.Tensor {
	n := checkSupportSize("Bernoulli", d.SupportSize())
	_, cols := d.Shape()
	values := make([]*ad.Tensor, n)
	for cfg := range values {
		values[cfg] = fill(tp, rows, cols, func(_, j int) float64 { return float64(cfg >> j & 1) })
	}
	return values
}

// Encoding returns [Index].
func (Categorical) Encoding() Encoding { return Index }

// Classes returns K, the columns of Logits (0 if Logits is nil).
func (d Categorical) Classes() int { return classesOf(d.Logits) }

// SupportSize returns K.
func (d Categorical) SupportSize() int { return d.Classes() }

// EnumerateSupport returns the K class indices as [rows x 1] values.
func (d Categorical) EnumerateSupport(tp *ad.Tape, rows int) []*ad.Tensor {
	values := make([]*ad.Tensor, checkSupportSize("Categorical", d.Classes()))
	for k := range values {
		values[k] = tp.Full(rows, 1, float64(k))
	}
	return values
}

// Encoding returns [OneHot].
func (OneHotCategorical) Encoding() Encoding { return OneHot }

// Classes returns K, the columns of Logits (0 if Logits is nil).
func (d OneHotCategorical) Classes() int { return classesOf(d.Logits) }

// SupportSize returns K.
func (d OneHotCategorical) SupportSize() int { return d.Classes() }

// EnumerateSupport returns the K one-hot rows as [rows x K] values.
func (d OneHotCategorical) EnumerateSupport(tp *ad.Tape, rows int) []*ad.Tensor {
	k := d.Classes()
	values := make([]*ad.Tensor, checkSupportSize("OneHotCategorical", k))
	for c := range values {
		values[c] = fill(tp, rows, k, func(_, j int) float64 { return b2f(j == c) })
	}
	return values
}

func classesOf(logits *ad.Tensor) int {
	if logits == nil {
		return 0
	}
	return logits.Cols()
}

func checkSupportSize(dist string, n int) int {
	if n > MaxSupportSize {
		panic(fmt.Sprintf("dist: %s.EnumerateSupport: support of %d points exceeds MaxSupportSize %d", dist, n, MaxSupportSize))
	}
	return n
}
