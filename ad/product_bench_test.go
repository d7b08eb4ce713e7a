package ad

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"

	gemmasm "github.com/backpropq/backpropq/ad/internal/gemm"
)

// dgemm is a row-major product c = op(a)·op(b) with tight strides.
type dgemm func(ta, tb bool, m, n, k int, a, b, c []float64)

// productImpls are the products compared by BenchmarkProduct: the kernel
// where this CPU has it, gonum, and OpenBLAS in the openblas build.
var productImpls = []struct {
	name string
	run  dgemm
}{
	{"gonum", blasProduct(gonum.Implementation{})},
}

func init() {
	if gemmasm.Available {
		kernel := func(ta, tb bool, m, n, k int, a, b, c []float64) {
			lda, ldb := k, n
			if ta {
				lda = m
			}
			if tb {
				ldb = k
			}
			gemmasm.Dgemm(ta, tb, m, n, k, 1, a, lda, b, ldb, 0, c, n)
		}
		productImpls = append([]struct {
			name string
			run  dgemm
		}{{"kernel", kernel}}, productImpls...)
	}
}

// blasProduct returns the product computed by a BLAS implementation.
func blasProduct(impl blas.Float64) dgemm {
	return func(ta, tb bool, m, n, k int, a, b, c []float64) {
		tA, tB, lda, ldb := blas.NoTrans, blas.NoTrans, k, n
		if ta {
			tA, lda = blas.Trans, m
		}
		if tb {
			tB, ldb = blas.Trans, k
		}
		impl.Dgemm(tA, tB, m, n, k, 1, a, lda, b, ldb, 0, c, n)
	}
}

// BenchmarkProduct reports GFLOP/s of c = op(a)·op(b) for the forward
// product of a linear layer (x·W: m = batch, k = in, n = out) and the two
// backward products of the same layer (dX = G·Wᵀ and dW = Xᵀ·G), at the
// SBN's and the MLP's shapes, and of square products of size 512, for each
// implementation side by side. GFLOP/cpu-s divides by the CPU time the
// process used on all its threads instead of the elapsed time: on a busy
// machine it tells how fast each core worked while it ran, which elapsed
// time does not (with GOMAXPROCS=1 it is the single-core speed).
func BenchmarkProduct(b *testing.B) {
	type shape struct{ batch, in, out int }
	rng := rand.New(rand.NewPCG(1, 2))
	randSlice := func(n int) []float64 {
		x := make([]float64, n)
		for i := range x {
			x[i] = rng.NormFloat64()
		}
		return x
	}
	for _, s := range []shape{{24, 784, 200}, {50, 784, 200}, {100, 784, 200}, {100, 200, 784}, {512, 512, 512}} {
		products := []struct {
			name    string
			m, n, k int
			ta, tb  bool
		}{
			{"x·W", s.batch, s.out, s.in, false, false},
			{"G·Wᵀ", s.batch, s.in, s.out, false, true},
			{"Xᵀ·G", s.in, s.out, s.batch, true, false},
		}
		for _, p := range products {
			x, y, z := randSlice(p.m*p.k), randSlice(p.k*p.n), make([]float64, p.m*p.n)
			for _, impl := range productImpls {
				name := fmt.Sprintf("%dx%dx%d/%s/%s", s.batch, s.in, s.out, p.name, impl.name)
				b.Run(name, func(b *testing.B) {
					b.ReportAllocs()
					cpu0 := processCPU()
					for b.Loop() {
						impl.run(p.ta, p.tb, p.m, p.n, p.k, x, y, z)
					}
					flops := 2 * float64(p.m*p.n*p.k) * float64(b.N)
					b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
					if cpu := processCPU() - cpu0; cpu > 0 {
						b.ReportMetric(flops/cpu.Seconds()/1e9, "GFLOP/cpu-s")
					}
				})
			}
		}
	}
}
