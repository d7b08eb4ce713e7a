package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/backpropq/backpropq/internal/atomicfile"
)

// series is the training curve of one run.
type series struct {
	label          string
	steps, seconds []float64
	elbo           []float64
}

// readRuns reads metrics files and returns one series per run id, in the
// order the runs first appear.
func readRuns(files []string) ([]*series, error) {
	var runs []*series
	byID := map[string]*series{}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		line := 0
		for sc.Scan() {
			line++
			var r record
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				f.Close()
				return nil, fmt.Errorf("%s:%d: %w", name, line, err)
			}
			if r.TestELBO != nil {
				continue // the final summary repeats the last step
			}
			s := byID[r.RunID]
			if s == nil {
				s = &series{label: fmt.Sprintf("%s %s", r.Model, r.Estimator)}
				byID[r.RunID] = s
				runs = append(runs, s)
			}
			s.steps = append(s.steps, float64(r.Step))
			s.seconds = append(s.seconds, r.Seconds)
			s.elbo = append(s.elbo, r.ELBOAvg)
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	if len(runs) == 0 {
		return nil, fmt.Errorf("no metrics records in %v", files)
	}
	// Label duplicates by their order.
	count := map[string]int{}
	for _, s := range runs {
		count[s.label]++
	}
	seen := map[string]int{}
	for _, s := range runs {
		if count[s.label] > 1 {
			seen[s.label]++
			s.label = fmt.Sprintf("%s #%d", s.label, seen[s.label])
		}
	}
	return runs, nil
}

// curvePlot returns a plot of every run's ELBO against x (steps or
// seconds).
func curvePlot(runs []*series, xlabel string, x func(*series) []float64) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "training ELBO (running mean)"
	p.X.Label.Text = xlabel
	p.Y.Label.Text = "ELBO (nats)"
	p.Legend.Top = false
	p.Add(plotter.NewGrid())
	lo := 0.0
	for i, s := range runs {
		xs := x(s)
		pts := make(plotter.XYs, 0, len(xs))
		for j := range xs {
			pts = append(pts, plotter.XY{X: xs[j], Y: s.elbo[j]})
		}
		sort.Slice(pts, func(a, b int) bool { return pts[a].X < pts[b].X })
		l, err := plotter.NewLine(pts)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.label, err)
		}
		l.Color = plotutil.Color(i)
		l.Dashes = plotutil.Dashes(i / 7)
		l.Width = vg.Points(1.2)
		p.Add(l)
		p.Legend.Add(s.label, l)
		// Start the axis at the tenth percentile of the curve, so that
		// the first steps do not flatten the rest.
		ys := append([]float64(nil), s.elbo...)
		sort.Float64s(ys)
		if q := ys[len(ys)/10]; i == 0 || q < lo {
			lo = q
		}
	}
	p.Y.Min = lo
	return p, nil
}

// plotFiles plots the runs of the metrics files into a PNG with two panels:
// ELBO against steps and against seconds.
func plotFiles(out string, files []string) error {
	if len(files) == 0 {
		return fmt.Errorf("plot: no metrics files given")
	}
	runs, err := readRuns(files)
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	bySteps, err := curvePlot(runs, "steps", func(s *series) []float64 { return s.steps })
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	bySeconds, err := curvePlot(runs, "seconds", func(s *series) []float64 { return s.seconds })
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	const w, h = 12 * vg.Inch, 4.5 * vg.Inch
	img := vgimg.New(w, h)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 2, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align([][]*plot.Plot{{bySteps, bySeconds}}, tiles, dc)
	bySteps.Draw(canvases[0][0])
	bySeconds.Draw(canvases[0][1])
	png := vgimg.PngCanvas{Canvas: img}
	return atomicfile.Write(out, 0o644, func(w io.Writer) error {
		_, err := png.WriteTo(w)
		return err
	})
}
