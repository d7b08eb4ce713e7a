//go:build amd64 && !purego

package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// tol is the tolerance of the kernel against the naive triple loop,
// relative to Σ_l |alpha·op(a)[i,l]·op(b)[l,j]| + |beta·c[i,j]|. Both sums
// of k products are within γ_(k+2) = (k+2)u/(1-(k+2)u) of that magnitude
// of the exact value (Higham, Accuracy and Stability, §3.1; u = 2^-53),
// whatever the order of the additions, so they differ by at most 2·γ_(k+2),
// 6.8e-14 at k = 300: the check cannot fail by rounding alone, and a
// wrong or missing term (of relative size above 1e-13) makes it fail.
const tol = 1e-13

func requireKernel(t testing.TB) {
	t.Helper()
	if !Available {
		t.Skip("this CPU has no AVX2 and FMA: products use gonum")
	}
}

// testCase is one product with its operands laid out in padded buffers.
type testCase struct {
	product
	c0 []float64 // c before the product
}

// newTestCase fills a, b and c with random values, rows padded by up to
// pad elements beyond their width.
func newTestCase(rng *rand.Rand, m, n, k int, ta, tb bool, pad int) testCase {
	ar, ac := m, k
	if ta {
		ar, ac = k, m
	}
	br, bc := k, n
	if tb {
		br, bc = n, k
	}
	g := product{transA: ta, transB: tb, m: m, n: n, k: k, alpha: 1, beta: 0,
		lda: max(ac, 1) + rng.IntN(pad+1), ldb: max(bc, 1) + rng.IntN(pad+1), ldc: max(n, 1) + rng.IntN(pad+1)}
	g.a = randSlice(rng, max(ar, 1)*g.lda)
	g.b = randSlice(rng, max(br, 1)*g.ldb)
	g.c = randSlice(rng, m*g.ldc)
	return testCase{product: g, c0: append([]float64(nil), g.c...)}
}

func randSlice(rng *rand.Rand, n int) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	return x
}

func (g *product) opA(i, l int) float64 {
	if g.transA {
		return g.a[l*g.lda+i]
	}
	return g.a[i*g.lda+l]
}

func (g *product) opB(l, j int) float64 {
	if g.transB {
		return g.b[j*g.ldb+l]
	}
	return g.b[l*g.ldb+j]
}

// verify compares c with the naive triple loop, and checks that the
// padding of c beyond each row is untouched.
func (tc *testCase) verify(t testing.TB) {
	t.Helper()
	g := &tc.product
	for i := range g.m {
		for j := range g.ldc {
			idx := i*g.ldc + j
			if j >= g.n {
				if math.Float64bits(g.c[idx]) != math.Float64bits(tc.c0[idx]) {
					t.Fatalf("%s: padding c[%d,%d] changed", tc.name(), i, j)
				}
				continue
			}
			var sum, mag float64
			for l := range g.k {
				p := g.alpha * g.opA(i, l) * g.opB(l, j)
				sum += p
				mag += math.Abs(p)
			}
			c0 := 0.0
			if g.beta != 0 {
				c0 = g.beta * tc.c0[idx]
			}
			want := sum + c0
			mag += math.Abs(c0)
			if d := math.Abs(g.c[idx] - want); !(d <= tol*mag) {
				t.Fatalf("%s: c[%d,%d] = %v, want %v (|diff| %.3g > %.0e·%.3g)",
					tc.name(), i, j, g.c[idx], want, d, tol, mag)
			}
		}
	}
}

func (tc *testCase) name() string {
	var s strings.Builder
	g := &tc.product
	s.WriteString("m,n,k=")
	s.WriteString(itoa(g.m) + "," + itoa(g.n) + "," + itoa(g.k))
	if g.transA {
		s.WriteString(" Aᵀ")
	}
	if g.transB {
		s.WriteString(" Bᵀ")
	}
	s.WriteString(" lda,ldb,ldc=" + itoa(g.lda) + "," + itoa(g.ldb) + "," + itoa(g.ldc))
	return s.String()
}

func itoa(x int) string {
	if x < 0 {
		return "-" + itoa(-x)
	}
	if x < 10 {
		return string(rune('0' + x))
	}
	return itoa(x/10) + string(rune('0'+x%10))
}

// sampleDim draws a dimension in [1, 300], log-uniformly so that small and
// edge sizes come up often, and sometimes at a tile or block boundary.
func sampleDim(rng *rand.Rand) int {
	edges := []int{1, 5, 6, 7, 8, 9, 12, 16, 95, 96, 97, 255, 256, 257, 300}
	if rng.IntN(4) == 0 {
		return edges[rng.IntN(len(edges))]
	}
	return min(300, int(math.Exp(rng.Float64()*math.Log(301))))
}

func TestGemmRandomShapes(t *testing.T) {
	requireKernel(t)
	rng := rand.New(rand.NewPCG(1, 2))
	budget := 60_000_000 // multiply-adds of the naive loop over all cases
	if testing.Short() {
		budget /= 4
	}
	for budget > 0 {
		m, n, k := sampleDim(rng), sampleDim(rng), sampleDim(rng)
		budget -= 4 * m * n * k
		for tr := range 4 {
			tc := newTestCase(rng, m, n, k, tr&1 != 0, tr&2 != 0, 3)
			tc.alpha = []float64{1, -0.5, 3}[rng.IntN(3)]
			tc.beta = []float64{0, 1, 0.25}[rng.IntN(3)]
			if tc.beta == 0 {
				for i := range tc.m {
					for j := range tc.n {
						tc.c[i*tc.ldc+j] = math.NaN() // must not leak
					}
				}
				copy(tc.c0, tc.c)
			}
			compute(tc.product)
			tc.verify(t)
		}
	}
}

// TestGemmSplitIdentical checks that cutting the output into any number
// of parts, by rows or by columns, gives bit-identical results.
func TestGemmSplitIdentical(t *testing.T) {
	requireKernel(t)
	rng := rand.New(rand.NewPCG(3, 4))
	// {100, 784, 200} is large enough for compute to use both cores.
	for _, s := range [][3]int{{24, 200, 784}, {50, 784, 200}, {100, 784, 200}, {97, 61, 300}, {784, 200, 50}, {13, 300, 7}} {
		for tr := range 4 {
			ref := newTestCase(rng, s[0], s[1], s[2], tr&1 != 0, tr&2 != 0, 2)
			ref.beta = 0.5
			runParts(ref.product, 1, true)
			for _, parts := range []int{2, 3, 7} {
				for _, splitN := range []bool{true, false} {
					g := ref.product
					g.c = append([]float64(nil), ref.c0...)
					runParts(g, parts, splitN)
					for i := range g.c {
						if math.Float64bits(g.c[i]) != math.Float64bits(ref.c[i]) {
							t.Fatalf("%s: %d parts (splitN %v) differ at %d: %v vs %v",
								ref.name(), parts, splitN, i, g.c[i], ref.c[i])
						}
					}
				}
			}
			// The parallel entry point agrees too.
			g := ref.product
			g.c = append([]float64(nil), ref.c0...)
			compute(g)
			for i := range g.c {
				if math.Float64bits(g.c[i]) != math.Float64bits(ref.c[i]) {
					t.Fatalf("%s: compute differs at %d", ref.name(), i)
				}
			}
		}
	}
}

// runParts computes g sequentially in the given number of parts.
func runParts(g product, parts int, splitN bool) {
	j := &job{args: g, splitN: splitN, bufs: make([]panels, 1)}
	for p := range parts {
		j.Part(p, parts, 0)
	}
}

func TestGemmAliasing(t *testing.T) {
	requireKernel(t)
	buf := make([]float64, 64)
	for i := range buf {
		buf[i] = float64(i)
	}
	cases := []struct {
		name    string
		a, b, c []float64
		want    string // panic message, or "" for none
	}{
		{"c is a", buf[:16], buf[16:32], buf[:16], "c overlaps a"},
		{"c inside b", buf[:16], buf[16:32], buf[20:36], "c overlaps b"},
		{"c after a and b", buf[:16], buf[16:32], buf[32:48], ""},
		// Only the elements a product touches count: a's last row ends at
		// 16 even though its slice runs on.
		{"c past a's last element", buf[:40], buf[40:56], buf[16:32], ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got string
			func() {
				defer func() {
					if r := recover(); r != nil {
						got, _ = r.(string)
					}
				}()
				compute(product{m: 4, n: 4, k: 4, alpha: 1, a: c.a, b: c.b, c: c.c, lda: 4, ldb: 4, ldc: 4})
			}()
			if c.want == "" && got != "" || !strings.Contains(got, c.want) {
				t.Fatalf("panic %q, want %q", got, c.want)
			}
		})
	}
}

func TestGemmShapePanics(t *testing.T) {
	requireKernel(t)
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "has 15 elements") {
			t.Fatalf("panic %v, want a short buffer named", r)
		}
	}()
	compute(product{m: 4, n: 4, k: 4, alpha: 1, a: make([]float64, 15), b: make([]float64, 16),
		c: make([]float64, 16), lda: 4, ldb: 4, ldc: 4})
}

// FuzzGemm checks the kernel against the naive loop on fuzzed shapes,
// transpositions, paddings and scalars; its seed corpus runs in go test.
func FuzzGemm(f *testing.F) {
	f.Add(uint16(1), uint16(1), uint16(1), uint8(0), uint8(0), uint64(1))
	f.Add(uint16(7), uint16(9), uint16(5), uint8(3), uint8(1), uint64(2))
	f.Add(uint16(6), uint16(8), uint16(256), uint8(1), uint8(0), uint64(3))
	f.Add(uint16(13), uint16(17), uint16(257), uint8(2), uint8(2), uint64(4))
	f.Add(uint16(100), uint16(33), uint16(3), uint8(7), uint8(3), uint64(5))
	f.Add(uint16(0), uint16(5), uint16(5), uint8(0), uint8(0), uint64(6))
	f.Add(uint16(5), uint16(5), uint16(0), uint8(12), uint8(0), uint64(7))
	f.Fuzz(func(t *testing.T, m, n, k uint16, flags, pad uint8, seed uint64) {
		requireKernel(t)
		mi, ni, ki := int(m%200), int(n%200), int(k%300)
		rng := rand.New(rand.NewPCG(seed, 1))
		tc := newTestCase(rng, mi, ni, ki, flags&1 != 0, flags&2 != 0, int(pad%5))
		tc.alpha = []float64{1, -2, 0}[int(flags>>2)%3]
		tc.beta = []float64{0, 1, -0.5}[int(flags>>4)%3]
		compute(tc.product)
		tc.verify(t)
	})
}

// TestGemmWideIdentical checks that the 8-wide kernel (two tiles at a
// time, on CPUs with AVX-512) gives the same bits as the 4-wide one, on
// random shapes in every transposition, so that a seed reproduces a run
// on either kind of CPU.
func TestGemmWideIdentical(t *testing.T) {
	requireKernel(t)
	if !wide {
		t.Skip("this CPU has no AVX-512: the 8-wide kernel is not used")
	}
	defer func(w bool) { wide = w }(wide)
	rng := rand.New(rand.NewPCG(5, 6))
	shapes := [][3]int{{24, 784, 200}, {50, 200, 784}, {6, 16, 1}, {7, 17, 5}, {12, 32, 256}, {13, 40, 257}, {1, 1, 1}}
	for range 40 {
		shapes = append(shapes, [3]int{sampleDim(rng), sampleDim(rng), sampleDim(rng)})
	}
	for _, s := range shapes {
		for tr := range 4 {
			ref := newTestCase(rng, s[0], s[1], s[2], tr&1 != 0, tr&2 != 0, 3)
			ref.alpha, ref.beta = -0.5, []float64{0, 1, 0.25}[rng.IntN(3)]
			wide = false
			compute(ref.product)
			g := ref.product
			g.c = append([]float64(nil), ref.c0...)
			wide = true
			compute(g)
			for i := range g.c {
				if math.Float64bits(g.c[i]) != math.Float64bits(ref.c[i]) {
					t.Fatalf("%s: the 8-wide kernel differs at %d: %v vs %v", ref.name(), i, g.c[i], ref.c[i])
				}
			}
		}
	}
}

// BenchmarkWide compares the 8-wide kernel with the 4-wide one on one
// core (no split) at the shapes of an SBN step (batch x in x out: x·W,
// G·Wᵀ and Xᵀ·G).
func BenchmarkWide(b *testing.B) {
	requireKernel(b)
	rng := rand.New(rand.NewPCG(1, 2))
	hasWide := wide
	defer func() { wide = hasWide }()
	for _, s := range [][3]int{{24, 784, 200}, {50, 784, 200}, {50, 200, 784}, {100, 200, 784}} {
		for _, p := range []struct {
			name    string
			m, n, k int
			ta, tb  bool
		}{
			{"x·W", s[0], s[2], s[1], false, false},
			{"G·Wᵀ", s[0], s[1], s[2], false, true},
			{"Xᵀ·G", s[1], s[2], s[0], true, false},
		} {
			tc := newTestCase(rng, p.m, p.n, p.k, p.ta, p.tb, 0)
			for _, w := range []bool{false, true} {
				if w && !hasWide {
					continue
				}
				b.Run(fmt.Sprintf("%dx%dx%d/%s/wide=%v", s[0], s[1], s[2], p.name, w), func(b *testing.B) {
					wide = w
					for b.Loop() {
						runParts(tc.product, 1, true)
					}
					b.ReportMetric(2*float64(p.m*p.n*p.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
			}
		}
	}
}
