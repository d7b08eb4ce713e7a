package exrun

import (
	"bytes"
	"context"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBudgetDone(t *testing.T) {
	for _, tc := range []struct {
		name    string
		b       Budget
		step    int64
		elapsed time.Duration
		want    bool
	}{
		{"zero never stops", Budget{}, 1 << 40, time.Hour, false},
		{"below steps", Budget{Steps: 10}, 9, time.Hour, false},
		{"at steps", Budget{Steps: 10}, 10, 0, true},
		{"below duration", Budget{Duration: time.Second}, 1 << 40, time.Second - 1, false},
		{"at duration", Budget{Duration: time.Second}, 0, time.Second, true},
		{"both, steps first", Budget{Steps: 5, Duration: time.Hour}, 5, time.Minute, true},
		{"both, neither", Budget{Steps: 5, Duration: time.Hour}, 4, time.Minute, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.b.Done(tc.step, tc.elapsed))
		})
	}
}

func TestProgressLine(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opt     ProgressOptions
		step    int64
		seconds float64
		rate    float64
		left    time.Duration
		line    string
	}{
		{"step limit", ProgressOptions{Total: 1000, Objective: "ELBO"}, 100, 10, 10, 90 * time.Second,
			"step     100     10.0s    10.0 steps/s  ELBO  -123.46  1m30s left"},
		{"resumed counts this session", ProgressOptions{Total: 1000, Start: 500, Objective: "ELBO"}, 600, 10, 10, 40 * time.Second,
			"step     600     10.0s    10.0 steps/s  ELBO  -123.46  40s left"},
		{"duration limit", ProgressOptions{Duration: time.Minute}, 50, 20, 2.5, 40 * time.Second,
			"step      50     20.0s     2.5 steps/s  objective  -123.46  40s left"},
		{"past duration", ProgressOptions{Duration: time.Minute}, 50, 100, 0.5, 0,
			"step      50    100.0s     0.5 steps/s  objective  -123.46  0s left"},
		{"no limit", ProgressOptions{Objective: "edit distance"}, 7, 2, 3.5, -1,
			"step       7      2.0s     3.5 steps/s  edit distance  -123.46"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opt.Bar = &bytes.Buffer{}
			p := NewProgress(tc.opt)
			assert.InDelta(t, tc.rate, p.Rate(tc.step, tc.seconds), 1e-12)
			assert.Equal(t, tc.left, p.Left(tc.step, tc.seconds))
			assert.Equal(t, tc.line, p.Line(tc.step, tc.seconds, -123.456))
		})
	}
}

func TestProgressUpdate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		quiet bool
		lines int
	}{
		{"log lines", false, 3},
		{"quiet", true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, bar bytes.Buffer
			p := NewProgress(ProgressOptions{Total: 10, Quiet: tc.quiet, Out: &out, Bar: &bar})
			for step := int64(1); step <= 10; step++ {
				p.Update(step, float64(step), 0, step%4 == 0)
			}
			p.Printf("done %d", 10)
			p.Finish()
			assert.Zero(t, bar.Len(), "a buffer is not a terminal: no bar")
			got := strings.Count(out.String(), "\n")
			assert.Equal(t, tc.lines, got, out.String())
			if !tc.quiet {
				assert.Contains(t, out.String(), "step       8")
				assert.True(t, strings.HasSuffix(out.String(), "done 10\n"))
			}
		})
	}
}

func TestIsTerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "x")
	require.NoError(t, err)
	defer f.Close()
	assert.False(t, IsTerminal(f))
	assert.False(t, IsTerminal(&bytes.Buffer{}))
}

type rec struct {
	Run   string   `json:"run"`
	Step  int64    `json:"step"`
	Value float64  `json:"value"`
	Extra *float64 `json:"extra,omitempty"`
}

func TestMetricsRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	dir := t.TempDir()
	for _, tc := range []struct {
		name  string
		opens int
		per   int
	}{
		{"one session", 1, 20},
		{"appended sessions", 3, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".jsonl")
			var want []rec
			for o := 0; o < tc.opens; o++ {
				w, err := OpenMetrics(path)
				require.NoError(t, err)
				for i := 0; i < tc.per; i++ {
					r := rec{Run: tc.name, Step: int64(len(want) + 1), Value: rng.NormFloat64() * 100}
					if i%3 == 0 {
						v := rng.Float64()
						r.Extra = &v
					}
					require.NoError(t, w.Write(r))
					want = append(want, r)
				}
				require.NoError(t, w.Close())
			}
			got, err := ReadJSONL[rec](path)
			require.NoError(t, err)
			// encoding/json round-trips float64 exactly.
			assert.Equal(t, want, got)
		})
	}
}

func TestMetricsNil(t *testing.T) {
	w, err := OpenMetrics("")
	require.NoError(t, err)
	assert.Nil(t, w)
	assert.NoError(t, w.Write(rec{}))
	assert.NoError(t, w.Close())
}

func TestReadJSONLErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.jsonl")
	require.NoError(t, os.WriteFile(bad, []byte("{\"step\":1}\n\n{\"step\":\n"), 0o644))
	for _, tc := range []struct {
		name  string
		files []string
		want  string
	}{
		{"malformed line", []string{bad}, "bad.jsonl:3"},
		{"missing file", []string{filepath.Join(dir, "none.jsonl")}, "none.jsonl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadJSONL[rec](tc.files...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.True(t, strings.HasPrefix(err.Error(), "exrun: "), err.Error())
		})
	}
}

func TestPlotCurves(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	curve := func(label string, n int, sign float64) Curve {
		c := Curve{Label: label}
		for i := 0; i < n; i++ {
			c.Steps = append(c.Steps, float64(10*(i+1)))
			c.Seconds = append(c.Seconds, float64(i+1)*0.5)
			c.Y = append(c.Y, sign*(100/float64(i+1)+rng.Float64()))
		}
		return c
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		name   string
		curves []Curve
		opt    PlotOptions
		err    string
	}{
		{"maximized", []Curve{curve("a", 50, -1), curve("b", 30, -1)}, PlotOptions{Title: "ELBO", YLabel: "nats"}, ""},
		{"minimized, same labels", []Curve{curve("a", 50, 1), curve("a", 30, 1)}, PlotOptions{YLabel: "edit distance", LowerIsBetter: true}, ""},
		{"no curves", nil, PlotOptions{}, "no curves"},
		{"empty curve", []Curve{{Label: "e"}}, PlotOptions{}, "empty"},
		{"unequal lengths", []Curve{{Label: "u", Steps: []float64{1, 2}, Seconds: []float64{1}, Y: []float64{1, 2}}}, PlotOptions{}, "unequal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".png")
			err := PlotCurves(path, tc.curves, tc.opt)
			if tc.err != "" {
				require.Error(t, err)
				if tc.err != "unequal" {
					assert.Contains(t, err.Error(), tc.err)
				}
				_, statErr := os.Stat(path)
				assert.True(t, os.IsNotExist(statErr), "no file on error")
				return
			}
			require.NoError(t, err)
			f, err := os.Open(path)
			require.NoError(t, err)
			defer f.Close()
			img, err := png.Decode(f)
			require.NoError(t, err)
			b := img.Bounds()
			assert.Greater(t, b.Dx(), b.Dy(), "two panels side by side")
		})
	}
}

func TestUniqueLabels(t *testing.T) {
	got := uniqueLabels([]Curve{{Label: "a"}, {Label: "b"}, {Label: "a"}, {Label: "a"}})
	assert.Equal(t, []string{"a #1", "b", "a #2", "a #3"}, got)
}

func TestInterruptContext(t *testing.T) {
	ctx, stop := InterruptContext(context.Background())
	defer stop()
	require.NoError(t, ctx.Err())
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGINT))
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("context not cancelled by SIGINT")
	}
}

// CurvesByRun makes one curve per run in order of first appearance, with
// the first point's label, whatever the interleaving of the runs' points.
func TestCurvesByRun(t *testing.T) {
	got := CurvesByRun([]Point{
		{Run: "b", Label: "second", Step: 1, Seconds: 0.5, Y: 10},
		{Run: "a", Label: "first", Step: 1, Seconds: 0.1, Y: 1},
		{Run: "b", Label: "ignored", Step: 2, Seconds: 1, Y: 20},
	})
	require.Equal(t, []Curve{
		{Label: "second", Steps: []float64{1, 2}, Seconds: []float64{0.5, 1}, Y: []float64{10, 20}},
		{Label: "first", Steps: []float64{1}, Seconds: []float64{0.1}, Y: []float64{1}},
	}, got)
	require.Empty(t, CurvesByRun(nil))
}

func TestRunIDNamesTheCodeAndTheSettings(t *testing.T) {
	a, b := RunID("linear", "disarm", 1), RunID("linear", "disarm", 2)
	require.Equal(t, a, RunID("linear", "disarm", 1), "same settings, same id")
	require.NotEqual(t, a, b, "other settings, other id")
	require.True(t, strings.HasPrefix(a, CodeVersion()+"/"), "id %q starts with the code version %q", a, CodeVersion())
}
