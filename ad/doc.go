// Package ad is reverse-mode automatic differentiation over batched float64
// matrices.
//
// Computation is define-by-run on an explicit [Tape]: every op appends a
// node to the tape of its inputs, and [Tape.Backward] walks the nodes in
// reverse. There is no global state, so two tapes may be used at the same
// time from different goroutines. Dimension 0 of every [Tensor] is the
// batch: a tensor is [B x D], a per-example quantity is [B x 1].
//
// Trainable values live outside any tape as [Var]s; [Tape.Var] binds a Var
// to a tape for one run, and Backward accumulates the gradient into
// [Var.Grad].
//
// Every tensor carries a [Provenance]: the set of stochastic-site ids its
// value depends on. An op's output carries the union of its inputs'
// provenance, [StopGradient] keeps it (data still flows), and
// [Tape.WithProvenance] replaces it. The tracer uses this to rebuild the
// stochastic computation graph from the data flow actually executed; this
// package knows nothing of probability.
//
// Besides the elementwise, reduction and shape ops, the package has the
// special functions probability densities are written with ([Lgamma],
// [Digamma], [Expm1], [Erf], [NormalCDF], [LogNormalCDF]), [WithDerivative]
// for a value computed outside the tape with a known derivative (an
// implicitly reparameterized sample), and the [Cholesky] factor and
// triangular solves ([SolveLower]) of multivariate Normals, all with exact
// gradients.
//
// Ops panic on programmer errors, as gonum's mat does: a shape mismatch
// panics with a *[ShapeError] naming the op and both shapes, and mixing
// tensors of two tapes panics. The modeling layer converts these panics
// into errors that name the site.
//
// Matrix products on amd64 CPUs with AVX2 and FMA run in this module's
// own kernel (packed panels, cache blocking and an assembly micro-kernel,
// with 8-wide registers where the CPU has AVX-512), which uses the idle
// cores for large products and gives the same bits whatever the number of
// cores and whichever register width runs. Elsewhere, and under the build tag purego,
// they go through gonum's blas64. Building with the tag openblas routes
// every product (here and in gonum's mat) to OpenBLAS through
// gonum.org/v1/netlib and cgo: install Debian's libopenblas-dev and run go
// test -tags openblas ./... (the package links -lopenblas itself). The
// default build needs no cgo. The kernel, gonum and OpenBLAS agree to
// rounding, not bit for bit: a run is reproducible within one build.
//
// Costly elementwise functions (exponentials, logarithms, softplus,
// sigmoid, tanh) on tensors of 4096 elements or more also use the idle
// cores, and softplus, log-sigmoid and [BinaryCrossEntropyLogits] run
// four elements at a time in AVX2 assembly (eight with AVX-512, with the
// same bits), within 3 ulps of the exact values (the tests measure at
// most 1 ulp for softplus and 2 for sigmoid, as for the math package's
// functions). Each element's value depends on
// its inputs alone, so neither changes results with the number of cores.
//
// A tape reuses its buffers: [Tape.Reset] returns every node's memory to
// the tape for the next run, after which tensors of the previous run must
// not be used. A training loop that resets one tape per step allocates
// nothing in steady state.
package ad
