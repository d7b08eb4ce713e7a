package gemm

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// parallelMin is the number of multiply-adds from which a product is
// split between cores: below it, waking a helper costs more than it saves.
const parallelMin = 1 << 17

// A job is one product cut into parts, blocks of whole micro-tile rows
// or columns of c. The caller and any idle helpers claim parts from next
// until none is left; which worker computes a part does not change its
// numbers, since every element of c is computed by the same sequence of
// operations wherever the cuts fall.
type job struct {
	args   product
	parts  int
	splitN bool // cut the columns of c (else the rows)
	next   atomic.Int64
	done   chan struct{}
	bufs   panels
}

var (
	// freeJobs holds jobs for reuse with their packing buffers. It is a
	// channel rather than a sync.Pool, which drops items at random under
	// the race detector and would make steady-state steps allocate there.
	freeJobs = make(chan *job, 8)

	helpersOnce sync.Once
	helpers     chan *job
	numHelpers  int
)

// helperCount starts, once, one helper goroutine per core beyond the
// first (as GOMAXPROCS is then) and returns their number. Helpers own their
// packing buffers and live for the life of the process.
func helperCount() int {
	helpersOnce.Do(func() {
		numHelpers = runtime.GOMAXPROCS(0) - 1
		helpers = make(chan *job)
		for range numHelpers {
			go helper()
		}
	})
	return numHelpers
}

func helper() {
	var bufs panels
	for j := range helpers {
		j.work(&bufs)
		j.done <- struct{}{}
	}
}

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
		j = &job{done: make(chan struct{}, helperCount())}
	}
	j.args = g
	j.next.Store(0)
	j.plan(min(runtime.GOMAXPROCS(0), helperCount()+1))
	joined := 0
	for joined < j.parts-1 && joined < numHelpers {
		select {
		case helpers <- j: // a helper was waiting
			joined++
			continue
		default:
		}
		break
	}
	j.work(&j.bufs)
	for range joined {
		<-j.done
	}
	j.args = product{}
	select {
	case freeJobs <- j:
	default:
	}
}

// plan sets the number of parts for up to workers workers. It cuts the
// dimension of c whose cut duplicates the smaller packing: cutting the
// columns makes every part pack all of op(a), cutting the rows all of
// op(b).
func (j *job) plan(workers int) {
	g := &j.args
	j.splitN = g.m <= g.n
	tiles := (g.m + tileM - 1) / tileM
	if j.splitN {
		tiles = (g.n + tileN - 1) / tileN
	}
	j.parts = 1
	if workers > 1 && g.m*g.n*g.k >= parallelMin {
		j.parts = min(workers, tiles)
	}
}

// work computes parts until none is left.
func (j *job) work(bufs *panels) {
	g := &j.args
	for {
		p := int(j.next.Add(1)) - 1
		if p >= j.parts {
			return
		}
		if j.splitN {
			j0, j1 := partRange(p, j.parts, g.n, tileN)
			g.block(bufs, 0, g.m, j0, j1)
		} else {
			i0, i1 := partRange(p, j.parts, g.m, tileM)
			g.block(bufs, i0, i1, 0, g.n)
		}
	}
}

// partRange returns part p of parts of [0, n), cut at multiples of tile.
func partRange(p, parts, n, tile int) (lo, hi int) {
	tiles := (n + tile - 1) / tile
	lo = p * tiles / parts * tile
	hi = min((p+1)*tiles/parts*tile, n)
	return lo, hi
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
