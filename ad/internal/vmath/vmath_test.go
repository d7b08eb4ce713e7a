package vmath

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

const prec = 160 // bits of the reference computations

// bigExp returns exp(x) for x <= 0 to prec bits: exp(x/2^k) by its Taylor
// series, then squared k times.
func bigExp(x float64) *big.Float {
	k := 0
	for math.Abs(x) > 1/1024.0 {
		x /= 2
		k++
	}
	xb := new(big.Float).SetPrec(prec).SetFloat64(x)
	sum := new(big.Float).SetPrec(prec).SetInt64(1)
	term := new(big.Float).SetPrec(prec).SetInt64(1)
	for n := 1; n < 40; n++ {
		term.Mul(term, xb)
		term.Quo(term, new(big.Float).SetPrec(prec).SetInt64(int64(n)))
		sum.Add(sum, term)
	}
	for range k {
		sum.Mul(sum, sum)
	}
	return sum
}

// bigLog1p returns log(1+e) for 0 <= e <= 1 to prec bits, as
// 2·atanh(t) = 2·Σ t^(2j+1)/(2j+1) with t = e/(2+e) <= 1/3.
func bigLog1p(e *big.Float) *big.Float {
	two := new(big.Float).SetPrec(prec).SetInt64(2)
	t := new(big.Float).SetPrec(prec).Quo(e, new(big.Float).SetPrec(prec).Add(two, e))
	t2 := new(big.Float).SetPrec(prec).Mul(t, t)
	sum := new(big.Float).SetPrec(prec)
	pow := new(big.Float).SetPrec(prec).Set(t)
	for j := 0; j < 90; j++ {
		sum.Add(sum, new(big.Float).SetPrec(prec).Quo(pow, new(big.Float).SetPrec(prec).SetInt64(int64(2*j+1))))
		pow.Mul(pow, t2)
	}
	return sum.Mul(sum, two)
}

// reference returns softplus(w) and sigmoid(w) correctly rounded (to
// within the reference's 160 bits).
func reference(w float64) (sp, sig float64) {
	e := bigExp(-math.Abs(w))
	one := new(big.Float).SetPrec(prec).SetInt64(1)
	u := new(big.Float).SetPrec(prec).Add(one, e)
	l := bigLog1p(e)
	num := one
	if w < 0 {
		num = e
	}
	sig, _ = new(big.Float).SetPrec(prec).Quo(num, u).Float64()
	sp, _ = l.Add(l, new(big.Float).SetPrec(prec).SetFloat64(math.Max(w, 0))).Float64()
	return sp, sig
}

// ulps returns |got - want| in units of the last place of want.
func ulps(got, want float64) float64 {
	if got == want {
		return 0
	}
	ulp := math.Nextafter(math.Abs(want), math.Inf(1)) - math.Abs(want)
	return math.Abs(got-want) / ulp
}

// sweep returns arguments from -750 to 750, log-spaced in |w| down to
// subnormals, both signs, with zeros and the edges of the vector range.
func sweep(n int) []float64 {
	xs := []float64{0, math.Copysign(0, -1), math.SmallestNonzeroFloat64, 1e-300, 0.5, 1, 2, 36.7, 37.5,
		708, -708, 708.0001, -708.0001, 745, -745, -746, 750}
	rng := rand.New(rand.NewPCG(1, 2))
	for range n {
		v := math.Exp(rng.Float64()*(math.Log(750)+20) - 20) // |w| in [2e-9, 750]
		if rng.IntN(20) == 0 {
			v = math.Ldexp(1, -rng.IntN(1070))
		}
		if rng.IntN(2) == 0 {
			v = -v
		}
		xs = append(xs, v)
	}
	return xs
}

// TestSoftplusSigmoidAccuracy checks the stated bounds against references
// computed to 160 bits, for the vector path and for Scalar.
func TestSoftplusSigmoidAccuracy(t *testing.T) {
	n := 4000
	if testing.Short() {
		n = 1000
	}
	w := sweep(n)
	sp, sig := make([]float64, len(w)), make([]float64, len(w))
	SoftplusSigmoid(w, sp, sig)
	var worst [4]float64 // vector sp, sig; scalar sp, sig
	for i, v := range w {
		wantSP, wantSig := reference(v)
		ssp, ssig := Scalar(v)
		for j, e := range []float64{ulps(sp[i], wantSP), ulps(sig[i], wantSig), ulps(ssp, wantSP), ulps(ssig, wantSig)} {
			worst[j] = max(worst[j], e)
		}
		if e := ulps(sp[i], wantSP); !(e <= 3) {
			t.Fatalf("softplus(%v) = %v, want %v (%.2f ulps)", v, sp[i], wantSP, e)
		}
		if e := ulps(sig[i], wantSig); !(e <= 3) {
			t.Fatalf("sigmoid(%v) = %v, want %v (%.2f ulps)", v, sig[i], wantSig, e)
		}
	}
	t.Logf("worst ulps: vector softplus %.2f sigmoid %.2f; math softplus %.2f sigmoid %.2f (vector path: %v)",
		worst[0], worst[1], worst[2], worst[3], vectorized)
}

func TestSoftplusSigmoidSpecial(t *testing.T) {
	w := []float64{math.Inf(1), math.Inf(-1), math.NaN(), 1, math.MaxFloat64, -math.MaxFloat64}
	sp, sig := make([]float64, len(w)), make([]float64, len(w))
	SoftplusSigmoid(w, sp, sig)
	want := [][2]float64{{math.Inf(1), 1}, {0, 0}, {math.NaN(), math.NaN()}, {1.3132616875182228, 0.7310585786300049},
		{math.MaxFloat64, 1}, {0, 0}}
	for i := range w {
		for j, got := range []float64{sp[i], sig[i]} {
			if !(got == want[i][j] || math.IsNaN(got) && math.IsNaN(want[i][j]) || ulps(got, want[i][j]) <= 3) {
				t.Errorf("w=%v: output %d is %v, want %v", w[i], j, got, want[i][j])
			}
		}
	}
}

// TestSoftplusSigmoidCutIndependent checks that a value's result does not
// depend on where it sits in the buffer (in a group of four or in the
// padded tail).
func TestSoftplusSigmoidCutIndependent(t *testing.T) {
	w := sweep(37)
	sp, sig := make([]float64, len(w)), make([]float64, len(w))
	SoftplusSigmoid(w, sp, sig)
	for start := 1; start < 4; start++ {
		sp2, sig2 := make([]float64, len(w)), make([]float64, len(w))
		SoftplusSigmoid(w[start:], sp2, sig2)
		for i := range w[start:] {
			if math.Float64bits(sp2[i]) != math.Float64bits(sp[start+i]) || math.Float64bits(sig2[i]) != math.Float64bits(sig[start+i]) {
				t.Fatalf("w=%v gives other bits at offset %d", w[start+i], start)
			}
		}
	}
}

func BenchmarkSoftplusSigmoid(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	w := make([]float64, 50*784)
	for i := range w {
		w[i] = 4 * rng.NormFloat64()
	}
	sp, sig := make([]float64, len(w)), make([]float64, len(w))
	b.Run("vmath", func(b *testing.B) {
		for b.Loop() {
			SoftplusSigmoid(w, sp, sig)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(w)), "ns/elem")
	})
	b.Run("math", func(b *testing.B) {
		for b.Loop() {
			for i, v := range w {
				sp[i], sig[i] = Scalar(v)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(w)), "ns/elem")
	})
}

// referenceTanh returns tanh(x) correctly rounded for |x| >= tanhSmall,
// as (1 - e)/(1 + e) with e = exp(-2|x|) <= 0.29 to 160 bits.
func referenceTanh(x float64) float64 {
	e := bigExp(-2 * math.Abs(x))
	one := new(big.Float).SetPrec(prec).SetInt64(1)
	num := new(big.Float).SetPrec(prec).Sub(one, e)
	den := new(big.Float).SetPrec(prec).Add(one, e)
	v, _ := num.Quo(num, den).Float64()
	return math.Copysign(v, x)
}

// TestTanhAccuracy checks the stated bound against references computed
// to 160 bits where the kernel serves, and that smaller arguments get
// math.Tanh's value.
func TestTanhAccuracy(t *testing.T) {
	n := 4000
	if testing.Short() {
		n = 1000
	}
	x := sweep(n)
	x = append(x, tanhSmall, -tanhSmall, math.Nextafter(tanhSmall, 0), 0.7, -3, 19, 20, 40)
	y := make([]float64, len(x))
	Tanh(x, y)
	worst, worstMath := 0.0, 0.0
	for i, v := range x {
		if math.Abs(v) < tanhSmall {
			if math.Float64bits(y[i]) != math.Float64bits(math.Tanh(v)) {
				t.Fatalf("tanh(%v) = %v, want math.Tanh's %v", v, y[i], math.Tanh(v))
			}
			continue
		}
		want := referenceTanh(v)
		e := ulps(y[i], want)
		if !(e <= 4) {
			t.Fatalf("tanh(%v) = %v, want %v (%.2f ulps)", v, y[i], want, e)
		}
		worst, worstMath = max(worst, e), max(worstMath, ulps(math.Tanh(v), want))
	}
	t.Logf("worst ulps from 0.625 on: Tanh %.2f, math.Tanh %.2f (vector path: %v)", worst, worstMath, vectorized)
}

func TestTanhSpecial(t *testing.T) {
	x := []float64{math.Inf(1), math.Inf(-1), math.NaN(), 0, math.Copysign(0, -1), math.MaxFloat64, -math.MaxFloat64}
	y := make([]float64, len(x))
	Tanh(x, y)
	for i, v := range x {
		want := math.Tanh(v)
		if math.Float64bits(y[i]) != math.Float64bits(want) && !(math.IsNaN(y[i]) && math.IsNaN(want)) {
			t.Errorf("tanh(%v) = %v, want %v", v, y[i], want)
		}
	}
}

// TestTanhCutIndependent checks that a value does not depend on the
// buffer it is computed in, and that y may be x.
func TestTanhCutIndependent(t *testing.T) {
	x := sweep(700)
	whole := make([]float64, len(x))
	Tanh(x, whole)
	for i, v := range x {
		one := []float64{v}
		Tanh(one, one)
		if math.Float64bits(one[0]) != math.Float64bits(whole[i]) && !math.IsNaN(v) {
			t.Fatalf("tanh(%v): %v alone, %v in the buffer", v, one[0], whole[i])
		}
	}
}

func BenchmarkTanh(b *testing.B) {
	x := make([]float64, 20000)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range x {
		x[i] = rng.NormFloat64() * 2
	}
	y := make([]float64, len(x))
	b.Run("vmath", func(b *testing.B) {
		for b.Loop() {
			Tanh(x, y)
		}
	})
	b.Run("math", func(b *testing.B) {
		for b.Loop() {
			for i, v := range x {
				y[i] = math.Tanh(v)
			}
		}
	})
}
