package gemm

import (
	"github.com/backpropq/backpropq/internal/par"
)

// parallelMin is the number of multiply-adds from which a product is
// split between cores: below it, waking a helper and packing twice cost
// more than they save. Measured on two cores: a 24x784x200 product runs
// at 92 GFLOP/s on one core and 80 on two, 50x784x200 at 91 and 84, and
// 100x784x200 at 82 and 102; an SBN step at batch 24 or 50, whose
// products are all below 2^23, trains 8-30% faster on one.
const parallelMin = 1 << 23

// A job is one product cut into parts, blocks of whole micro-tile rows or
// columns of c, run by package par. Which worker computes a part does not
// change its numbers, since every element of c is computed by the same
// sequence of operations wherever the cuts fall.
type job struct {
	args   product
	splitN bool     // cut the columns of c (else the rows)
	bufs   []panels // packing buffers per worker
}

// freeJobs holds jobs for reuse with their packing buffers (a channel, not
// a sync.Pool, for the reason given in package par).
var freeJobs = make(chan *job, 8)

// compute computes g with the blocked product, on as many cores as are
// idle and worth waking. It panics if c overlaps a or b.
func compute(g product) {
	g.check()
	if g.m == 0 || g.n == 0 {
		return
	}
	var j *job
	select {
	case j = <-freeJobs:
	default:
		j = &job{bufs: make([]panels, par.Workers())}
	}
	j.args = g
	par.Do(j, j.plan(par.Workers()))
	j.args = product{}
	select {
	case freeJobs <- j:
	default:
	}
}

// plan returns the number of parts for up to workers workers. It cuts the
// dimension of c whose cut duplicates the smaller packing: cutting the
// columns makes every part pack all of op(a), cutting the rows all of
// op(b).
func (j *job) plan(workers int) int {
	g := &j.args
	j.splitN = g.m <= g.n
	tiles := (g.m + tileM - 1) / tileM
	if j.splitN {
		tiles = (g.n + tileN - 1) / tileN
	}
	if workers > 1 && g.m*g.n*g.k >= parallelMin {
		return min(workers, tiles)
	}
	return 1
}

// Part computes part p of parts of the product.
func (j *job) Part(p, parts, worker int) {
	g := &j.args
	if j.splitN {
		j0, j1 := par.Range(p, parts, g.n, tileN)
		g.block(&j.bufs[worker], 0, g.m, j0, j1)
		return
	}
	i0, i1 := par.Range(p, parts, g.m, tileM)
	g.block(&j.bufs[worker], i0, i1, 0, g.n)
}

// Dgemm computes c = alpha·op(a)·op(b) + beta·c, where op(a) is m x k,
// op(b) is k x n and c is m x n, all row-major with row strides lda, ldb
// and ldc; op(x) is x transposed when its flag is set. With beta = 0, c
// need not hold numbers beforehand. Dgemm uses idle cores for large
// products and is safe for concurrent use.
//
// Dgemm panics if a buffer is too short for its shape and stride, if the
// part of c it writes overlaps the part of a or b it reads, or if
// [Available] is false.
func Dgemm(transA, transB bool, m, n, k int, alpha float64, a []float64, lda int,
	b []float64, ldb int, beta float64, c []float64, ldc int) {
	compute(product{transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, beta: beta,
		a: a, b: b, c: c, lda: lda, ldb: ldb, ldc: ldc})
}
