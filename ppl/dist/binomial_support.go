package dist

import (
	"fmt"
	"math"

	"github.com/backpropq/backpropq/ad"
)

// Encoding returns [Count].
func (Binomial) Encoding() Encoding { return Count }

// Classes returns n+1, the values 0..n of each count, n being the total
// count. It panics when the total count is not the same in every row and
// column, where the rows do not share one support to enumerate.
func (d Binomial) Classes() int { return d.totalCount() + 1 }

// SupportSize returns (n+1)^D for D columns, saturating at math.MaxInt. It
// panics as [Binomial.Classes] does.
func (d Binomial) SupportSize() int {
	k := d.Classes()
	_, cols := d.Shape()
	size := 1
	for range cols {
		if size > math.MaxInt/k {
			return math.MaxInt
		}
		size *= k
	}
	return size
}

// EnumerateSupport returns the (n+1)^D rows of counts, point m having
// digit j of m in base n+1 in column j, as described on [Finite]. It
// panics as [Binomial.Classes] does.
func (d Binomial) EnumerateSupport(tp *ad.Tape, rows int) []*ad.Tensor {
	k := d.Classes()
	_, cols := d.Shape()
	values := make([]*ad.Tensor, checkSupportSize("Binomial", d.SupportSize()))
	for m := range values {
		values[m] = fill(tp, rows, cols, func(_, j int) float64 {
			digit := m
			for range j {
				digit /= k
			}
			return float64(digit % k)
		})
	}
	return values
}

// totalCount returns the total count shared by every element, panicking
// when there is none.
func (d Binomial) totalCount() int {
	if d.TotalCount == nil {
		panic("dist: Binomial: enumerating the support needs TotalCount")
	}
	data := d.TotalCount.Data()
	n := data[0]
	for _, v := range data {
		if v != n {
			panic(fmt.Sprintf("dist: Binomial: enumerating the support needs one TotalCount in every row and column, got %v and %v", n, v))
		}
	}
	if !isNonNegativeInteger(n) || n >= MaxSupportSize {
		panic(fmt.Sprintf("dist: Binomial: enumerating the support needs a TotalCount that is an integer in [0, %d), got %v", MaxSupportSize, n))
	}
	return int(n)
}
