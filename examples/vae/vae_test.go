package main

import (
	"bytes"
	"context"
	"flag"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/examples/internal/mnist"
)

var (
	sliceOnce sync.Once
	sliceData *mnist.Data
	sliceErr  error
)

// mnistSlice returns a few hundred MNIST images, enough to exercise every
// path in a second or two.
func mnistSlice(t *testing.T) *mnist.Data {
	t.Helper()
	sliceOnce.Do(func() {
		d, err := mnist.Load()
		if err == nil {
			sliceData = &mnist.Data{Train: d.Train.Slice(0, 400), Valid: d.Valid.Slice(0, 60), Test: d.Test.Slice(0, 60)}
		}
		sliceErr = err
	})
	require.NoError(t, sliceErr)
	return sliceData
}

// opts parses args after the settings of a short quiet test run.
func opts(t *testing.T, args ...string) options {
	t.Helper()
	fs := flag.NewFlagSet("vae", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	base := []string{"-quiet", "-duration", "0", "-batch", "10", "-eval-every", "0", "-eval-limit", "30"}
	o, err := parseFlags(fs, append(base, args...))
	require.NoError(t, err)
	return o
}

func run(t *testing.T, o options) *result {
	t.Helper()
	res, err := trainOn(context.Background(), o, mnistSlice(t), io.Discard)
	require.NoError(t, err)
	return res
}

func meanOf(xs []float64) float64 { return mean(xs) }

func TestEveryModelAndEstimatorTrains(t *testing.T) {
	cases := [][]string{
		{"-model", "gauss"},
		{"-model", "gauss", "-analytic-kl"},
		{"-model", "gauss", "-iwae-train", "3"},
		{"-model", "gauss", "-iwae-train", "3", "-workers", "2"},
		{"-model", "discrete", "-estimator", "gumbel-st"},
		{"-model", "discrete", "-estimator", "reinforce"},
		{"-model", "discrete", "-estimator", "nvil"},
		{"-model", "discrete", "-estimator", "relax"},
		{"-model", "discrete", "-estimator", "bpq"},
		{"-model", "discrete", "-estimator", "bpq-cv"},
		{"-model", "discrete", "-estimator", "bpq-adv"},
		{"-model", "mixed", "-estimator", "bpq"},
		{"-model", "mixed", "-estimator", "bpq-cv"},
		{"-model", "mixed", "-estimator", "reinforce"},
	}
	for _, args := range cases {
		t.Run(filepath.Join(args...), func(t *testing.T) {
			res := run(t, opts(t, append(args, "-steps", "8")...))
			require.Len(t, res.elbos, 8)
			for i, e := range res.elbos {
				require.False(t, math.IsNaN(e) || math.IsInf(e, 0), "step %d: ELBO %v", i, e)
				require.Less(t, e, 0.0, "step %d", i)
			}
			for _, v := range []float64{res.valid, res.test} {
				assert.False(t, math.IsNaN(v) || math.IsInf(v, 0))
				assert.Less(t, v, 0.0)
			}
		})
	}
}

func TestTrainingImprovesTheBound(t *testing.T) {
	for _, args := range [][]string{
		{"-model", "gauss"},
		{"-model", "gauss", "-analytic-kl"},
		{"-model", "gauss", "-iwae-train", "3"},
		{"-model", "mixed", "-estimator", "bpq"},
	} {
		t.Run(filepath.Join(args...), func(t *testing.T) {
			res := run(t, opts(t, append(args, "-steps", "200")...))
			// The mean over 20 steps has a standard error of a few nats
			// (per-image bounds vary by about 30 nats, 10 images a step);
			// 200 steps gain far more than that.
			first, last := meanOf(res.elbos[:20]), meanOf(res.elbos[180:])
			assert.Greater(t, last, first+10, "mean ELBO of the first and last 20 steps")
		})
	}
}

func TestResumeIsBitIdentical(t *testing.T) {
	for _, args := range [][]string{
		{"-model", "mixed", "-estimator", "reinforce"},
		{"-model", "discrete", "-estimator", "nvil"},
		{"-model", "discrete", "-estimator", "relax"},
		{"-model", "gauss", "-iwae-train", "2"},
	} {
		t.Run(filepath.Join(args...), func(t *testing.T) {
			dir := t.TempDir()
			whole := run(t, opts(t, append(args, "-steps", "8")...))
			ck := filepath.Join(dir, "a.ckpt")
			first := run(t, opts(t, append(args, "-steps", "5", "-save", ck)...))
			o := opts(t, "-resume", ck, "-steps", "8")
			second := run(t, o)
			got := append(append([]float64(nil), first.elbos...), second.elbos...)
			require.Equal(t, whole.elbos, got, "training bounds of an uninterrupted and a resumed run")
			for _, p := range whole.s.svi.Params.Params() {
				q := second.s.svi.Params.Get(p.Name)
				require.NotNil(t, q, p.Name)
				require.True(t, mat.Equal(p.Value, q.Value), "parameter %s", p.Name)
			}
		})
	}
}

// TestBackpropQResumeIsExact checks that a Backprop-Q run resumed from a
// checkpoint continues bit for bit: the checkpoint holds the critics with
// their Adam state and output normalization, and the estimator's running
// statistics.
func TestBackpropQResumeIsExact(t *testing.T) {
	for _, args := range [][]string{
		{"-model", "discrete", "-estimator", "bpq"},
		{"-model", "discrete", "-estimator", "bpq-cv"},
		{"-model", "mixed", "-estimator", "bpq-adv"},
	} {
		t.Run(filepath.Join(args...), func(t *testing.T) {
			ck := filepath.Join(t.TempDir(), "a.ckpt")
			whole := run(t, opts(t, append(args, "-steps", "10")...))
			first := run(t, opts(t, append(args, "-steps", "5", "-save", ck)...))
			second := run(t, opts(t, "-resume", ck, "-steps", "10"))
			got := append(append([]float64(nil), first.elbos...), second.elbos...)
			require.Equal(t, whole.elbos, got)
		})
	}
}

func TestGridsArePNGsOfTheGridSize(t *testing.T) {
	for _, model := range []string{"gauss", "discrete", "mixed"} {
		t.Run(model, func(t *testing.T) {
			prefix := filepath.Join(t.TempDir(), model)
			o := opts(t, "-model", model, "-estimator", "gumbel-st", "-steps", "3", "-grid", prefix)
			run(t, o)
			w, h := gridSize(gridRows, gridCols)
			for _, name := range []string{prefix + "-recon.png", prefix + "-samples.png"} {
				raw, err := os.ReadFile(name)
				require.NoError(t, err)
				img, err := png.Decode(bytes.NewReader(raw))
				require.NoError(t, err, name)
				require.Equal(t, w, img.Bounds().Dx(), name)
				require.Equal(t, h, img.Bounds().Dy(), name)
				// A tile's pixels are not all the background gray.
				levels := map[uint32]bool{}
				for y := gridGap; y < gridGap+side; y++ {
					for x := gridGap; x < gridGap+side; x++ {
						r, _, _, _ := img.At(x, y).RGBA()
						levels[r] = true
					}
				}
				assert.Greater(t, len(levels), 1, name)
			}
		})
	}
}

func TestGridImagePlacesTiles(t *testing.T) {
	tiles := make([][]float64, 3)
	for i := range tiles {
		tiles[i] = make([]float64, side*side)
	}
	tiles[2][side+1] = 1 // tile 2, row 1, column 1
	img := gridImage(tiles, 1, 3)
	w, h := gridSize(1, 3)
	require.Equal(t, w, img.Bounds().Dx())
	require.Equal(t, h, img.Bounds().Dy())
	x0 := gridGap + 2*(side+gridGap)
	assert.Equal(t, uint8(255), img.GrayAt(x0+1, gridGap+1).Y)
	assert.Equal(t, uint8(0), img.GrayAt(x0, gridGap).Y)
	assert.Equal(t, uint8(128), img.GrayAt(0, 0).Y, "background")
}

func TestCriticsRoundTripAndAreReused(t *testing.T) {
	for _, model := range []string{"discrete", "mixed"} {
		t.Run(model, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "critics.q")
			a := run(t, opts(t, "-model", model, "-estimator", "bpq", "-steps", "6", "-critics", file))
			keys := a.s.bpq.Set.Keys()
			require.NotEmpty(t, keys)

			// A new run loads them before its first step: same keys, same
			// outputs on random inputs.
			o := opts(t, "-model", model, "-estimator", "bpq", "-steps", "0", "-seed", "9", "-critics", file)
			b, err := newSession(o, mnistSlice(t))
			require.NoError(t, err)
			require.Equal(t, keys, b.bpq.Set.Keys())
			rng := rand.New(rand.NewPCG(1, 2))
			for _, k := range keys {
				ca, cb := a.s.bpq.Set.Critic(k), b.bpq.Set.Critic(k)
				require.NotNil(t, cb, k)
				width := ca.Layout().Width()
				x := mat.NewDense(5, width, nil)
				for i := range x.RawMatrix().Data {
					x.RawMatrix().Data[i] = rng.NormFloat64()
				}
				pa, pb := make([]float64, 5), make([]float64, 5)
				ca.Predict(x, pa)
				cb.Predict(x, pb)
				require.Equal(t, pa, pb, "critic %s", k)
			}

			// Training from them uses them: after one step the critics'
			// hidden layers are one Adam step (lr 1e-3 per weight) from
			// the loaded ones, with no key created afresh. (The output
			// layer is also rescaled by the normalized targets' new
			// moments, so it moves further.)
			o.steps = 1
			res, err := trainOn(context.Background(), o, mnistSlice(t), io.Discard)
			require.NoError(t, err)
			require.Equal(t, keys, res.s.bpq.Set.Keys())
			for _, k := range keys {
				wa, wb := a.s.bpq.Set.Critic(k).Weights(), res.s.bpq.Set.Critic(k).Weights()
				require.Len(t, wb, len(wa))
				for i := range wa[:2] { // W and b of the hidden layer
					for j := range wa[i] {
						require.InDelta(t, wa[i][j], wb[i][j], 2e-3, "critic %s weight %d/%d", k, i, j)
					}
				}
			}
		})
	}
}

func TestGradLogVarIsFinite(t *testing.T) {
	for _, e := range []string{"reinforce", "gumbel-st"} {
		res := run(t, opts(t, "-model", "discrete", "-estimator", e, "-steps", "2", "-var-draws", "4"))
		assert.False(t, math.IsNaN(res.logVar) || math.IsInf(res.logVar, 0), e)
	}
	// The score function's gradient varies far more than the
	// straight-through one's at the same parameters.
	sf := run(t, opts(t, "-model", "discrete", "-estimator", "reinforce", "-steps", "2", "-var-draws", "20"))
	st := run(t, opts(t, "-model", "discrete", "-estimator", "gumbel-st", "-steps", "2", "-var-draws", "20"))
	assert.Greater(t, sf.logVar, st.logVar)
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-model", "sbn"},
		{"-estimator", "arm"},
		{"-steps", "-1"},
		{"-batch", "0"},
		{"-iwae", "-2"},
		{"-var-draws", "1"},
		{"-plot", "x.png"},
		{"extra"},
		{"-lr", "x"},
		{"-model", "gauss", "-iwae-train", "-4"},
		{"-batch", "10", "-workers", "11"},
		{"-lr", "-1"},
		{"-resume", "missing.ckpt"},
	} {
		fs := flag.NewFlagSet("vae", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		_, err := parseFlags(fs, args)
		assert.Error(t, err, "%v", args)
	}
	// Combinations that the session rejects.
	dir := t.TempDir()
	ck := filepath.Join(dir, "g.ckpt")
	run(t, opts(t, "-model", "gauss", "-steps", "1", "-save", ck))
	for _, args := range [][]string{
		{"-model", "discrete", "-estimator", "gumbel-st", "-critics", filepath.Join(dir, "c.q")},
		{"-model", "gauss", "-critics", filepath.Join(dir, "c.q")},
		{"-model", "discrete", "-iwae-train", "4"},
		{"-resume", ck, "-model", "mixed"},
		{"-resume", ck, "-lr", "0.5"},
	} {
		_, err := newSession(opts(t, args...), mnistSlice(t))
		assert.Error(t, err, "%v", args)
	}
}

func TestPlotOfMetricsFiles(t *testing.T) {
	dir := t.TempDir()
	metrics := filepath.Join(dir, "m.jsonl")
	for _, model := range []string{"gauss", "mixed"} {
		run(t, opts(t, "-model", model, "-steps", "6", "-log-every", "2", "-metrics", metrics))
	}
	curves, err := readCurves([]string{metrics})
	require.NoError(t, err)
	require.Len(t, curves, 2)
	for _, c := range curves {
		assert.Equal(t, []float64{2, 4, 6}, c.Steps, c.Label)
		require.Len(t, c.Y, 3, c.Label)
	}
	out := filepath.Join(dir, "p.png")
	require.NoError(t, plotFiles(out, []string{metrics}))
	raw, err := os.ReadFile(out)
	require.NoError(t, err)
	_, err = png.Decode(bytes.NewReader(raw))
	require.NoError(t, err)
	require.Error(t, plotFiles(out, []string{filepath.Join(dir, "missing.jsonl")}))
}

func TestCancelledRunSavesItsCheckpoint(t *testing.T) {
	dir := t.TempDir()
	ck := filepath.Join(dir, "c.ckpt")
	first := run(t, opts(t, "-model", "mixed", "-estimator", "reinforce", "-steps", "3", "-save", ck))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out bytes.Buffer
	res, err := trainOn(ctx, opts(t, "-resume", ck, "-steps", "10", "-save", ck), mnistSlice(t), &out)
	require.NoError(t, err)
	assert.Equal(t, int64(3), res.steps, "no step after the cancellation")
	assert.Contains(t, out.String(), "interrupted after step 3")
	again, err := newSession(opts(t, "-resume", ck), mnistSlice(t))
	require.NoError(t, err)
	assert.Equal(t, int64(3), again.svi.StepCount())
	for _, p := range first.s.svi.Params.Params() {
		require.True(t, mat.Equal(p.Value, again.svi.Params.Get(p.Name).Value), p.Name)
	}
}

func TestIWAETrainingBoundIsPerImage(t *testing.T) {
	// At the initial parameters the IWAE bound with 3 particles lies a few
	// nats above the ELBO (about -200 nats per image), far less than the
	// factor of 3 that a bound summed over particles would show.
	elbo := run(t, opts(t, "-model", "gauss", "-steps", "3"))
	iw := run(t, opts(t, "-model", "gauss", "-iwae-train", "3", "-steps", "3"))
	assert.InDelta(t, meanOf(elbo.elbos), meanOf(iw.elbos), 30)
	assert.Less(t, meanOf(iw.elbos), -100.0)
}
