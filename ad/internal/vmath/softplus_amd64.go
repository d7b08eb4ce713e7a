//go:build amd64 && !purego

package vmath

import (
	"math"

	"golang.org/x/sys/cpu"
)

var vectorized = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// wide selects softplusSigmoid512, eight values at a time, on CPUs with
// AVX-512; it gives the same bits as the four-wide kernel.
var wide = vectorized && cpu.X86.HasAVX512F

//go:noescape
func softplusSigmoidAVX(n int, w, sp, sig *float64, c *[30][4]float64)

//go:noescape
func softplusSigmoid512(n int, w, sp, sig *float64, c *[30][4]float64)

// softplusConsts are the kernel's constants, four copies each (see the
// offsets in softplus_amd64.s).
var softplusConsts = func() (c [30][4]float64) {
	set := func(i int, v float64) { c[i] = [4]float64{v, v, v, v} }
	set(0, math.Copysign(0, -1)) // sign bit
	set(1, -708.39)
	set(2, math.Log2E)
	set(3, 6.93147180369123816490e-01) // ln 2, upper bits (n·hi exact)
	set(4, 1.90821492927058770002e-10) // ln 2 - hi
	fact := 1.0
	for k := 1; k <= 13; k++ {
		fact *= float64(k)
	}
	for k := 13; k >= 0; k-- { // 1/13! down to 1/0! at indices 5 to 18
		set(5+13-k, 1/fact)
		if k > 0 {
			fact /= float64(k)
		}
	}
	set(19, 0.5)
	set(20, 2)
	set(21, math.Sqrt2)
	// Minimax coefficients of (log(1+f) - 2s)/(2s) in s² for
	// |s| <= 0.1716 (fdlibm's Lg7 down to Lg1).
	for i, v := range []float64{1.479819860511658591e-01, 1.531383769920937332e-01,
		1.818357216161805012e-01, 2.222219843214978396e-01, 2.857142874366239149e-01,
		3.999999999940941908e-01, 6.666666666666735130e-01} {
		set(22+i, v)
	}
	c[29] = [4]float64{math.Float64frombits(1023), math.Float64frombits(1023), math.Float64frombits(1023), math.Float64frombits(1023)}
	return c
}()

// softplusSigmoidVec runs the kernels over w, padding the last values to a
// group of four, and recomputes values beyond ±vectorMax with Scalar.
func softplusSigmoidVec(w, sp, sig []float64) {
	n4 := len(w) &^ 3
	n8 := 0
	if wide {
		n8 = len(w) &^ 7
	}
	if n8 > 0 {
		softplusSigmoid512(n8, &w[0], &sp[0], &sig[0], &softplusConsts)
	}
	if n4 > n8 {
		softplusSigmoidAVX(n4-n8, &w[n8], &sp[n8], &sig[n8], &softplusConsts)
	}
	if rest := len(w) - n4; rest > 0 {
		var tw, tsp, tsig [4]float64
		copy(tw[:], w[n4:])
		softplusSigmoidAVX(4, &tw[0], &tsp[0], &tsig[0], &softplusConsts)
		copy(sp[n4:], tsp[:rest])
		copy(sig[n4:], tsig[:rest])
	}
	for i, v := range w {
		if !(math.Abs(v) <= vectorMax) { // also NaN
			sp[i], sig[i] = Scalar(v)
		}
	}
}
