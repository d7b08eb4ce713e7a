package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/examples/internal/mnist"
	"github.com/backpropq/backpropq/internal/ckpt"
)

var (
	smallOnce sync.Once
	small     *mnist.Data
	smallErr  error
)

// smallData returns a few hundred MNIST images, enough to exercise every
// path quickly.
func smallData(t *testing.T) *mnist.Data {
	t.Helper()
	smallOnce.Do(func() {
		d, err := mnist.Load()
		if err != nil {
			smallErr = err
			return
		}
		small = &mnist.Data{Train: d.Train.Slice(0, 300), Valid: d.Valid.Slice(0, 100), Test: d.Test.Slice(0, 100)}
	})
	require.NoError(t, smallErr)
	return small
}

// testOptions returns the options of a short quiet run.
func testOptions(t *testing.T, estimator string, steps int) options {
	fs := newFlagSet()
	o, err := parseFlags(fs, []string{"-estimator", estimator, "-steps", "0", "-quiet", "-eval-every", "0", "-log-every", "1", "-eval-limit", "50"})
	require.NoError(t, err)
	o.steps = steps
	o.duration = 0
	return o
}

// readRecords reads a metrics file.
func readRecords(t *testing.T, path string) []record {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var recs []record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r record
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r))
		recs = append(recs, r)
	}
	require.NoError(t, sc.Err())
	return recs
}

// stepRecords returns the per-step records (not the final summaries),
// keyed by step, with the wall-clock time and run id cleared.
func stepRecords(recs []record) map[int64]record {
	out := map[int64]record{}
	for _, r := range recs {
		if r.TestELBO != nil {
			continue
		}
		r.Seconds, r.RunID = 0, ""
		out[r.Step] = r
	}
	return out
}

// TestResumeIsBitIdentical checks that a run saved after a few steps and
// resumed ends with the same parameters, optimizer and estimator state
// and metrics, bit for bit, as a run that was never interrupted.
func TestResumeIsBitIdentical(t *testing.T) {
	data := smallData(t)
	for _, c := range []struct {
		estimator string
		workers   int
	}{
		{"nvil", 1},  // a baseline network and running statistics
		{"rebar", 2}, // learned temperature and scale, two chunks
	} {
		t.Run(c.estimator, func(t *testing.T) {
			dir := t.TempDir()
			const total, first = 6, 3
			o := testOptions(t, c.estimator, total)
			o.workers = c.workers
			o.save = filepath.Join(dir, "straight.ckpt")
			o.metrics = filepath.Join(dir, "straight.jsonl")
			_, err := trainOn(context.Background(), o, data, io.Discard)
			require.NoError(t, err)

			o.steps = first
			o.save = filepath.Join(dir, "part.ckpt")
			o.metrics = filepath.Join(dir, "resumed.jsonl")
			_, err = trainOn(context.Background(), o, data, io.Discard)
			require.NoError(t, err)
			o.steps = total
			o.resume = o.save
			o.save = filepath.Join(dir, "resumed.ckpt")
			res, err := trainOn(context.Background(), o, data, io.Discard)
			require.NoError(t, err)
			require.EqualValues(t, total, res.steps)

			straight, err := ckpt.ReadFile(filepath.Join(dir, "straight.ckpt"))
			require.NoError(t, err)
			resumed, err := ckpt.ReadFile(o.save)
			require.NoError(t, err)
			require.Equal(t, ckpt.Names(straight), ckpt.Names(resumed))
			for name, raw := range straight {
				if name == metaSection {
					continue
				}
				assert.True(t, bytes.Equal(raw, resumed[name]), "section %s differs", name)
			}
			var ms, mr meta
			require.NoError(t, json.Unmarshal(straight[metaSection], &ms))
			require.NoError(t, json.Unmarshal(resumed[metaSection], &mr))
			assert.Equal(t, ms.AvgSum, mr.AvgSum)
			assert.Equal(t, ms.AvgWeight, mr.AvgWeight)

			want := stepRecords(readRecords(t, filepath.Join(dir, "straight.jsonl")))
			got := stepRecords(readRecords(t, filepath.Join(dir, "resumed.jsonl")))
			require.Len(t, want, total)
			assert.Equal(t, want, got)
		})
	}
}

// TestEveryEstimatorTrains runs each available estimator for a few steps
// and checks that the ELBO stays finite and does not move absurdly: from
// the pixel-mean initialization a sane step changes the validation ELBO
// by at most a few nats at this learning rate.
func TestEveryEstimatorTrains(t *testing.T) {
	data := smallData(t)
	first := testOptions(t, "arm", 1)
	ref, err := trainOn(context.Background(), first, data, io.Discard)
	require.NoError(t, err)
	require.False(t, math.IsNaN(ref.valid))
	for _, e := range estimators {
		if e.make == nil {
			continue
		}
		t.Run(e.name, func(t *testing.T) {
			o := testOptions(t, e.name, 8)
			res, err := trainOn(context.Background(), o, data, io.Discard)
			require.NoError(t, err)
			for _, v := range []float64{res.trainAvg, res.valid, res.test} {
				require.False(t, math.IsNaN(v) || math.IsInf(v, 0), "non-finite ELBO %v", v)
			}
			// The first step is the same initialization for every
			// estimator: compare with the one-step run of ARM.
			assert.InDelta(t, ref.valid, res.valid, 10, "valid ELBO after 8 steps")
			assert.Less(t, res.trainAvg, 0.0)
		})
	}
}

// TestEstimatorErrors checks the errors of unknown estimators and of
// -critics with an estimator that learns none, and that every Backprop-Q
// estimator is available.
func TestEstimatorErrors(t *testing.T) {
	_, err := findEstimator("nope")
	require.Error(t, err)
	assert.False(t, errors.Is(err, errNotAvailable))
	spec, err := findEstimator(defaultEstimator)
	require.NoError(t, err, "the default estimator must run")
	assert.NotNil(t, spec.make)

	o := testOptions(t, "arm", 1)
	o.critics = filepath.Join(t.TempDir(), "critics")
	err = criticsCheck(o)
	require.Error(t, err, "arm learns no critics")
	assert.False(t, errors.Is(err, errNotAvailable))
	o.estimator = "bpq"
	assert.NoError(t, criticsCheck(o))
	o.mode = "eval"
	assert.Error(t, criticsCheck(o), "critics only in training")
	o.mode = "train"
	o.critics = ""
	o.estimator = "bpq-cv"
	_, err = newSession(o, smallData(t))
	assert.NoError(t, err, "bpq-cv runs (relaxed control variate)")
}

// TestEvaluation checks the evaluation on a small slice: it is
// reproducible, and the importance-weighted bound with K = 20 lies above
// the ELBO (it does in expectation for every data point; at the
// initialization the gap is several nats, far above the noise of 100
// images).
func TestEvaluation(t *testing.T) {
	data := smallData(t)
	o := testOptions(t, "disarm", 2)
	s, err := newSession(o, data)
	require.NoError(t, err)
	s.fillBatch(0)
	_, err = s.svi.Step()
	require.NoError(t, err)
	elbo := s.evaluate(data.Test, 0, 7)
	again := s.evaluate(data.Test, 0, 7)
	assert.Equal(t, elbo, again)
	assert.Less(t, elbo, 0.0)
	assert.Greater(t, elbo, -784*math.Ln2*2, "worse than twice a coin per pixel")
	iw := s.logLikelihood(data.Test, 0, 20, 7)
	assert.Greater(t, iw, elbo+1)
	assert.Less(t, iw, 0.0)
}

// TestVarianceMode runs the gradient-variance measurement and checks that
// ARM's gradient has far lower variance than REINFORCE's without baseline.
func TestVarianceMode(t *testing.T) {
	data := smallData(t)
	dir := t.TempDir()
	o := testOptions(t, "arm", 2)
	o.save = filepath.Join(dir, "arm.ckpt")
	_, err := trainOn(context.Background(), o, data, io.Discard)
	require.NoError(t, err)

	v := testOptions(t, "reinforce", 0)
	v.mode, v.estimator = "variance", "reinforce,arm"
	v.resume = o.save
	v.draws = 8
	v.warmup = 2
	v.set["estimator"] = true
	rows, err := measureVariances(context.Background(), v, data)
	require.NoError(t, err)
	require.Len(t, rows, 2)
	for _, r := range rows {
		require.False(t, math.IsNaN(r.logMeanVar) || math.IsInf(r.logMeanVar, 0), "%s", r.estimator)
	}
	assert.Greater(t, rows[0].logMeanVar, rows[1].logMeanVar+1, "REINFORCE %v vs ARM %v", rows[0].logMeanVar, rows[1].logMeanVar)
	var b strings.Builder
	printVariances(&b, v, rows)
	assert.Contains(t, b.String(), "reinforce")
}

// TestPlot plots two runs' metrics.
func TestPlot(t *testing.T) {
	data := smallData(t)
	dir := t.TempDir()
	var files []string
	for _, e := range []string{"arm", "disarm"} {
		o := testOptions(t, e, 4)
		o.metrics = filepath.Join(dir, e+".jsonl")
		_, err := trainOn(context.Background(), o, data, io.Discard)
		require.NoError(t, err)
		files = append(files, o.metrics)
	}
	out := filepath.Join(dir, "elbo.png")
	require.NoError(t, plotFiles(out, files))
	raw, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.True(t, bytes.HasPrefix(raw, []byte("\x89PNG")))
	runs, err := readRuns(files)
	require.NoError(t, err)
	require.Len(t, runs, 2)
	assert.Len(t, runs[0].Steps, 4)
}

// TestModels trains the two deeper models a few steps.
func TestModels(t *testing.T) {
	data := smallData(t)
	for _, c := range []struct{ model, estimator string }{
		{"linear2", "disarm"},
		{"linear2", "muprop"},
		{"nonlinear", "nvil"},
	} {
		t.Run(c.model+"/"+c.estimator, func(t *testing.T) {
			o := testOptions(t, c.estimator, 3)
			o.model = c.model
			res, err := trainOn(context.Background(), o, data, io.Discard)
			require.NoError(t, err)
			require.False(t, math.IsNaN(res.valid) || math.IsInf(res.valid, 0))
			assert.Less(t, res.valid, 0.0)
		})
	}
}

// TestInterruptSaves checks that a cancelled run stops before its next
// step and still writes its checkpoint, from which a run resumes.
func TestInterruptSaves(t *testing.T) {
	data := smallData(t)
	dir := t.TempDir()
	o := testOptions(t, "arm", 2)
	o.save = filepath.Join(dir, "a.ckpt")
	_, err := trainOn(context.Background(), o, data, io.Discard)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	o.resume, o.steps = o.save, 10
	var out strings.Builder
	res, err := trainOn(ctx, o, data, &out)
	require.NoError(t, err)
	assert.EqualValues(t, 2, res.steps)
	assert.Contains(t, out.String(), "interrupted after step 2")
	_, err = os.Stat(o.save)
	require.NoError(t, err)
}

// TestCritics checks -critics: a run saves its critics, a later run loads
// them (and so trains differently from a fresh start with the same seed),
// a grown model reuses them, and a bad file is an error that leaves it as
// it was. Scope-layout mismatches are package q's tests.
func TestCritics(t *testing.T) {
	data := smallData(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "critics")
	o := testOptions(t, "bpq", 3)
	o.critics = path
	var out strings.Builder
	_, err := trainOn(context.Background(), o, data, &out)
	require.NoError(t, err)
	assert.NotContains(t, out.String(), "loaded critics", "no file yet")
	first, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NotEmpty(t, first)

	out.Reset()
	loaded, err := trainOn(context.Background(), o, data, &out)
	require.NoError(t, err)
	assert.Contains(t, out.String(), "loaded critics")
	second, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.NotEqual(t, first, second, "the loaded critics trained further and were saved")

	fresh := testOptions(t, "bpq", 3)
	res, err := trainOn(context.Background(), fresh, data, io.Discard)
	require.NoError(t, err)
	assert.NotEqual(t, res.trainAvg, loaded.trainAvg, "loaded critics change the gradients after the first step")

	for _, c := range []struct {
		name     string
		model    string
		contents []byte
		ok       bool
	}{
		{"grown model reuses what it can", "linear2", second, true},
		{"corrupt file", "linear", second[:len(second)/2], false},
		{"not a critics file", "linear", []byte("hello"), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "critics")
			require.NoError(t, os.WriteFile(p, c.contents, 0o644))
			o := testOptions(t, "bpq", 2)
			o.model, o.critics = c.model, p
			_, err := trainOn(context.Background(), o, data, io.Discard)
			if c.ok {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			after, rerr := os.ReadFile(p)
			require.NoError(t, rerr)
			assert.Equal(t, c.contents, after, "a bad file is left as it was")
		})
	}
}

// stopAfter is a context whose Err reports cancellation from its n+1th
// call on: a Ctrl-C that arrives during step n.
type stopAfter struct {
	context.Context
	n int
}

func (c *stopAfter) Err() error {
	if c.n <= 0 {
		return context.Canceled
	}
	c.n--
	return nil
}

// TestInterruptSavesCritics checks that a run stopped by Ctrl-C still
// writes the critics it has learned.
func TestInterruptSavesCritics(t *testing.T) {
	data := smallData(t)
	dir := t.TempDir()
	size := map[int]int64{}
	for _, n := range []int{0, 2} {
		o := testOptions(t, "bpq", 5)
		o.critics = filepath.Join(dir, fmt.Sprintf("critics-%d", n))
		var out strings.Builder
		res, err := trainOn(&stopAfter{Context: context.Background(), n: n}, o, data, &out)
		require.NoError(t, err)
		assert.EqualValues(t, n, res.steps)
		assert.Contains(t, out.String(), fmt.Sprintf("interrupted after step %d", n))
		st, err := os.Stat(o.critics)
		require.NoError(t, err, "critics saved on interrupt")
		size[n] = st.Size()
	}
	assert.Greater(t, size[2], size[0], "the interrupted run saved critics, not an empty set")
}
