package dist

import (
	"math"
	"math/rand/v2"
	"sync"

	"github.com/backpropq/backpropq/ad"
)

// tiny is the smallest positive normal float64; relaxed samples are kept at
// least this far from the boundary of their support so that their
// log-density stays finite.
const tiny = 0x1p-1022

// belowOne is the largest float64 below 1.
const belowOne = 1 - 0x1p-53

// view reads a tensor's elements with broadcasting: a dimension of size 1
// repeats.
type view struct {
	data       []float64
	rows, cols int
}

func viewOf(t *ad.Tensor) view {
	r, c := t.Dims()
	return view{data: t.Data(), rows: r, cols: c}
}

func (v view) at(i, j int) float64 {
	if v.rows == 1 {
		i = 0
	}
	if v.cols == 1 {
		j = 0
	}
	return v.data[i*v.cols+j]
}

func broadcastDim(x, y int) (int, bool) {
	switch {
	case x == y:
		return x, true
	case x == 1:
		return y, true
	case y == 1:
		return x, true
	}
	return 0, false
}

// shapeOf returns the broadcast shape of ts, assuming they broadcast; nil
// tensors are skipped.
func shapeOf(ts ...*ad.Tensor) (rows, cols int) {
	for _, t := range ts {
		if t == nil {
			continue
		}
		r, c := t.Dims()
		rows, cols = max(rows, r), max(cols, c)
	}
	return rows, cols
}

// expand returns t broadcast to [rows x cols]: t itself when it has that
// shape already.
func expand(t *ad.Tensor, rows, cols int) *ad.Tensor {
	if r, c := t.Dims(); r == rows && c == cols {
		return t
	}
	return ad.Add(t, t.Tape().Zeros(rows, cols))
}

// scratch buffers let the samplers build a tensor's data without a heap
// allocation per call; the tape copies the data into its own buffer.
var scratchPool = sync.Pool{New: func() any { return new([]float64) }}

func getScratch(n int) *[]float64 {
	p := scratchPool.Get().(*[]float64)
	if cap(*p) < n {
		*p = make([]float64, n)
	}
	*p = (*p)[:n]
	return p
}

// fill returns a new constant [rows x cols] tensor on tp whose element
// (i, j) is f(i, j); f is called in row-major order, so the random
// numbers it draws are reproducible.
func fill(tp *ad.Tape, rows, cols int, f func(i, j int) float64) *ad.Tensor {
	buf := getScratch(rows * cols)
	d := *buf
	for i := 0; i < rows; i++ {
		row := d[i*cols : (i+1)*cols]
		for j := range row {
			row[j] = f(i, j)
		}
	}
	t := tp.FromData(rows, cols, d)
	scratchPool.Put(buf)
	return t
}

// constWithProv returns a constant tensor filled by f that carries the
// provenance p but no gradient path.
func constWithProv(tp *ad.Tape, rows, cols int, p ad.Provenance, f func(i, j int) float64) *ad.Tensor {
	return tp.WithProvenance(fill(tp, rows, cols, f), p)
}

// uniformOpen draws from the open interval (0, 1).
func uniformOpen(rng *rand.Rand) float64 {
	for {
		if u := rng.Float64(); u > 0 {
			return u
		}
	}
}

// logistic draws standard logistic noise, log u - log(1-u).
func logistic(rng *rand.Rand) float64 {
	u := uniformOpen(rng)
	return math.Log(u) - math.Log1p(-u)
}

// gumbel draws standard Gumbel noise, -log(-log u).
func gumbel(rng *rand.Rand) float64 {
	return -math.Log(-math.Log(uniformOpen(rng)))
}

func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

// argmaxRow returns the index of the first largest element of row.
func argmaxRow(row []float64) int {
	best := 0
	for k, v := range row[1:] {
		if v > row[best] {
			best = k + 1
		}
	}
	return best
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
