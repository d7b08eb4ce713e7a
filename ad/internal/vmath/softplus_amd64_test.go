//go:build amd64 && !purego

package vmath

import (
	"math"
	"testing"
)

// TestSoftplusSigmoidWideIdentical checks that the eight-wide kernel gives
// the bits of the four-wide one on the sweep, NaNs and infinities
// included, and that SoftplusSigmoid gives the same bits with the
// eight-wide kernel on and off at every buffer length up to 40.
func TestSoftplusSigmoidWideIdentical(t *testing.T) {
	if !wide {
		t.Skip("this CPU has no AVX-512")
	}
	w := append(sweep(4000), math.Inf(1), math.Inf(-1), math.NaN(), math.MaxFloat64, -math.MaxFloat64)
	n := len(w) &^ 7
	sp4, sig4 := make([]float64, n), make([]float64, n)
	sp8, sig8 := make([]float64, n), make([]float64, n)
	softplusSigmoidAVX(n, &w[0], &sp4[0], &sig4[0], &softplusConsts)
	softplusSigmoid512(n, &w[0], &sp8[0], &sig8[0], &softplusConsts)
	same := func(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) }
	for i := range n {
		if !same(sp4[i], sp8[i]) || !same(sig4[i], sig8[i]) {
			t.Fatalf("w=%v: four-wide (%v, %v), eight-wide (%v, %v)", w[i], sp4[i], sig4[i], sp8[i], sig8[i])
		}
	}
	for length := 1; length <= 40; length++ {
		x := w[100 : 100+length]
		spA, sigA := make([]float64, length), make([]float64, length)
		spB, sigB := make([]float64, length), make([]float64, length)
		SoftplusSigmoid(x, spA, sigA)
		wide = false
		SoftplusSigmoid(x, spB, sigB)
		wide = true
		for i := range x {
			if !same(spA[i], spB[i]) || !same(sigA[i], sigB[i]) {
				t.Fatalf("length %d, w=%v: with AVX-512 (%v, %v), without (%v, %v)", length, x[i], spA[i], sigA[i], spB[i], sigB[i])
			}
		}
	}
}

// BenchmarkSoftplusSigmoidWide times SoftplusSigmoid with the eight-wide
// kernel and with the four-wide one alone.
func BenchmarkSoftplusSigmoidWide(b *testing.B) {
	if !wide {
		b.Skip("this CPU has no AVX-512")
	}
	w := sweep(50*784 - 17)
	sp, sig := make([]float64, len(w)), make([]float64, len(w))
	for _, on := range []bool{true, false} {
		name := map[bool]string{true: "8-wide", false: "4-wide"}[on]
		b.Run(name, func(b *testing.B) {
			wide = on
			defer func() { wide = true }()
			for b.Loop() {
				SoftplusSigmoid(w, sp, sig)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(w)), "ns/elem")
		})
	}
}
