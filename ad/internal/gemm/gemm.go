package gemm

import (
	"fmt"
	"unsafe"
)

// The blocked matrix product follows BLIS: the k dimension is cut into
// blocks of at most blockK, the columns of op(b) into blocks of at most
// blockN and the rows of op(a) into blocks of at most blockM. Each block
// of op(b) is packed into kc x tileN micro-panels and each block of op(a)
// into tileM x kc micro-panels, so the micro-kernel reads both operands
// contiguously whatever their transposition, and a kc x tileN panel of b
// (16 KiB at kc = 256) stays in L1 while the tileM x kc panels of a
// stream from L2.
const (
	tileM  = 6
	tileN  = 8
	blockK = 256
	blockM = 96
	blockN = 4080
)

// product describes c = alpha·op(a)·op(b) + beta·c on row-major buffers:
// op(a) is m x k, op(b) is k x n, and lda, ldb, ldc are the row strides
// (in elements) of a, b and c as stored.
type product struct {
	transA, transB bool
	m, n, k        int
	alpha, beta    float64
	a, b, c        []float64
	lda, ldb, ldc  int
}

// panels is one worker's packed panels and edge tile.
type panels struct {
	pa, pb []float64
	tile   [tileM * 2 * tileN]float64
}

// check panics unless the shapes fit the buffers and c is disjoint from a
// and b: the product writes c while it still reads a and b, so an
// overlapping c would be read after it was overwritten.
func (g *product) check() {
	ar, ac := g.m, g.k
	if g.transA {
		ar, ac = ac, ar
	}
	br, bc := g.k, g.n
	if g.transB {
		br, bc = bc, br
	}
	mustFit("a", g.a, ar, ac, g.lda)
	mustFit("b", g.b, br, bc, g.ldb)
	mustFit("c", g.c, g.m, g.n, g.ldc)
	if g.m == 0 || g.n == 0 {
		return
	}
	cUsed := g.c[:(g.m-1)*g.ldc+g.n]
	if g.k > 0 && overlap(cUsed, g.a[:(ar-1)*g.lda+ac]) {
		panic("gemm: c overlaps a")
	}
	if g.k > 0 && overlap(cUsed, g.b[:(br-1)*g.ldb+bc]) {
		panic("gemm: c overlaps b")
	}
}

func mustFit(name string, x []float64, rows, cols, stride int) {
	if rows < 0 || cols < 0 || stride < max(cols, 1) {
		panic(fmt.Sprintf("gemm: %s is %dx%d with stride %d", name, rows, cols, stride))
	}
	if rows > 0 && cols > 0 && len(x) < (rows-1)*stride+cols {
		panic(fmt.Sprintf("gemm: %s is %dx%d with stride %d but has %d elements",
			name, rows, cols, stride, len(x)))
	}
}

// overlap reports whether the memory of x and y intersects.
func overlap(x, y []float64) bool {
	x0 := uintptr(unsafe.Pointer(unsafe.SliceData(x)))
	y0 := uintptr(unsafe.Pointer(unsafe.SliceData(y)))
	return x0 < y0+uintptr(len(y))*8 && y0 < x0+uintptr(len(x))*8
}

// kBlock returns the depth of the k blocks: k split evenly into as few
// blocks of at most blockK as possible. It depends on k alone, so every
// element of c is summed in the same order however the output is split
// between workers.
func kBlock(k int) int {
	blocks := (k + blockK - 1) / blockK
	return (k + blocks - 1) / blocks
}

// block computes rows [i0, i1) and columns [j0, j1) of c.
func (g *product) block(buf *panels, i0, i1, j0, j1 int) {
	if g.k == 0 || g.alpha == 0 || g.beta != 0 {
		g.scaleC(i0, i1, j0, j1)
	}
	if g.k == 0 || g.alpha == 0 {
		return
	}
	kc := kBlock(g.k)
	for jc := j0; jc < j1; jc += blockN {
		nc := min(blockN, j1-jc)
		for pc := 0; pc < g.k; pc += kc {
			kcur := min(kc, g.k-pc)
			blk := kBlockArgs{pc: pc, kc: kcur, direct: g.directB(i1 - i0), add: g.beta != 0 || pc > 0}
			buf.pb = grow(buf.pb, roundUp(nc, tileN)*kcur)
			g.packB(buf.pb, pc, kcur, jc, nc, blk.direct)
			for ic := i0; ic < i1; ic += blockM {
				mc := min(blockM, i1-ic)
				buf.pa = grow(buf.pa, roundUp(mc, tileM)*kcur)
				g.packA(buf.pa, ic, mc, pc, kcur)
				g.macro(buf, ic, mc, jc, nc, blk)
			}
		}
	}
}

// scaleC sets the block of c to beta·c, to exact zeros when beta is 0 (so
// that NaNs in an uninitialized c do not leak, as in BLAS). When beta is 0
// and there are products to add, the first k block overwrites c instead.
func (g *product) scaleC(i0, i1, j0, j1 int) {
	if g.beta == 1 {
		return
	}
	for i := i0; i < i1; i++ {
		row := g.c[i*g.ldc+j0 : i*g.ldc+j1]
		if g.beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= g.beta
		}
	}
}

// kBlockArgs describes one block of depths [pc, pc+kc) for macro.
type kBlockArgs struct {
	pc, kc int
	direct bool // full panels of op(b) are read from b, not packed
	add    bool // add to c rather than overwrite it
}

// directB reports whether a block of rows rows reads full panels of op(b)
// straight from b instead of packing them. That pays when b is not
// transposed (a panel's rows are 8 contiguous values) and few row tiles
// reuse each panel, so packing would cost about as much as the products;
// strides of a multiple of 4 KiB are left packed, since their rows would
// all fall in the same L1 cache sets.
func (g *product) directB(rows int) bool {
	return !g.transB && rows <= directBMaxRows && g.ldb%512 != 0
}

// directBMaxRows is the most rows of c for which op(b) is read unpacked:
// at 100 rows reading b in place is still 1.2-1.4x faster than packing it
// (a panel of kc x 8 values stays in L1 across the row tiles).
const directBMaxRows = 128

// macro runs the micro-kernel over every tile of the block, adding to c or,
// for the first k block when beta is 0, overwriting it. A tile that sticks
// out of c runs on a copy in buf.tile, so its elements see the same
// operations as those of a full tile.
func (g *product) macro(buf *panels, ic, mc, jc, nc int, blk kBlockArgs) {
	c, ldc, kc := g.c, g.ldc, blk.kc
	add := 0
	if blk.add {
		add = 1
	}
	// panel returns the jr-th column panel of op(b) and its row stride.
	panel := func(jr int) ([]float64, int) {
		if blk.direct && jr+tileN <= nc {
			first := blk.pc*g.ldb + jc + jr
			_ = g.b[first+(kc-1)*g.ldb+tileN-1]
			return g.b[first:], g.ldb
		}
		return buf.pb[jr*kc:], tileN
	}
	for jr := 0; jr < nc; jr += tileN {
		nr := min(tileN, nc-jr)
		bp, ldb := panel(jr)
		// Two full panels side by side run together on 8-wide registers;
		// both come from the same source, so they share ldb.
		var bp1 []float64
		if wide && jr+2*tileN <= nc {
			bp1, _ = panel(jr + tileN)
			nr = 2 * tileN
		}
		for ir := 0; ir < mc; ir += tileM {
			mr := min(tileM, mc-ir)
			ap := buf.pa[ir*kc:]
			ci := (ic+ir)*ldc + jc + jr
			switch {
			case mr < tileM || nr < tileN:
				g.edge(buf, ap, bp, bp1, ldb, ci, mr, nr, kc, add)
			case bp1 != nil:
				_ = c[ci+(tileM-1)*ldc+2*tileN-1]
				kern6x16(kc, &ap[0], &bp[0], &bp1[0], &c[ci], &c[ci+tileN], ldc, g.alpha, add, ldb)
			default:
				_ = c[ci+(tileM-1)*ldc+tileN-1]
				kern6x8(kc, &ap[0], &bp[0], &c[ci], ldc, g.alpha, add, ldb)
			}
		}
		if bp1 != nil {
			jr += tileN
		}
	}
}

// edge runs the micro-kernel on an mr x nr tile of c that sticks out of c,
// at ci, on a copy in buf.tile, so its elements see the same operations as
// those of a full tile: kern6x8 on the panel bp, or, when bp1 is not nil,
// kern6x16 on the two full panels bp and bp1 (nr = 2·tileN).
func (g *product) edge(buf *panels, ap, bp, bp1 []float64, ldb, ci, mr, nr, kc, add int) {
	c, ldc := g.c, g.ldc
	w := tileN
	if bp1 != nil {
		w = 2 * tileN
	}
	t := buf.tile[:]
	for r := 0; r < mr; r++ {
		copy(t[r*w:r*w+nr], c[ci+r*ldc:])
	}
	if bp1 != nil {
		kern6x16(kc, &ap[0], &bp[0], &bp1[0], &t[0], &t[tileN], w, g.alpha, add, ldb)
	} else {
		kern6x8(kc, &ap[0], &bp[0], &t[0], w, g.alpha, add, ldb)
	}
	for r := 0; r < mr; r++ {
		copy(c[ci+r*ldc:ci+r*ldc+nr], t[r*w:])
	}
}

func roundUp(x, m int) int { return (x + m - 1) / m * m }

func grow(x []float64, n int) []float64 {
	if cap(x) < n {
		return make([]float64, n)
	}
	return x[:n]
}
