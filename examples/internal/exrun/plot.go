package exrun

import (
	"fmt"
	"io"
	"math"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/backpropq/backpropq/internal/atomicfile"
)

// Curve is the training curve of one run: Y[i] was measured at step
// Steps[i] after Seconds[i] of training.
type Curve struct {
	Label   string
	Steps   []float64
	Seconds []float64
	Y       []float64
}

// Point is one point of a run's curve, as a program reads it from a
// metrics record.
type Point struct {
	// Run identifies the run (a run id); Label names its curve.
	Run, Label    string
	Step, Seconds float64
	Y             float64
}

// CurvesByRun groups points into one curve per run, in the order the runs
// first appear; a run's first point gives its curve's label.
func CurvesByRun(points []Point) []Curve {
	var curves []Curve
	byRun := map[string]int{}
	for _, p := range points {
		i, ok := byRun[p.Run]
		if !ok {
			i = len(curves)
			byRun[p.Run] = i
			curves = append(curves, Curve{Label: p.Label})
		}
		c := &curves[i]
		c.Steps = append(c.Steps, p.Step)
		c.Seconds = append(c.Seconds, p.Seconds)
		c.Y = append(c.Y, p.Y)
	}
	return curves
}

// PlotOptions labels a plot made by [PlotCurves].
type PlotOptions struct {
	// Title is the title of both panels, e.g. "training ELBO".
	Title string
	// YLabel labels the y axis, e.g. "ELBO (nats)".
	YLabel string
	// LowerIsBetter says the objective is minimized (an edit distance, a
	// loss): the y axis then ends at the 90th percentile of the worst
	// curve instead of starting at its 10th percentile, so that the
	// first steps do not flatten the rest.
	LowerIsBetter bool
}

// PlotCurves writes a PNG to path (atomically) with two panels: every
// curve's Y against steps and against seconds. Curves with the same
// label are numbered in their order. Curves of unequal lengths, or no
// curve with a point, are an error.
func PlotCurves(path string, curves []Curve, opt PlotOptions) error {
	if len(curves) == 0 {
		return fmt.Errorf("exrun: plot: no curves")
	}
	for _, c := range curves {
		if len(c.Steps) != len(c.Y) || len(c.Seconds) != len(c.Y) {
			return fmt.Errorf("exrun: plot: curve %q has %d steps, %d seconds and %d values", c.Label, len(c.Steps), len(c.Seconds), len(c.Y))
		}
		if len(c.Y) == 0 {
			return fmt.Errorf("exrun: plot: curve %q is empty", c.Label)
		}
	}
	labels := uniqueLabels(curves)
	bySteps, err := curvePlot(curves, labels, opt, "steps", func(c *Curve) []float64 { return c.Steps })
	if err != nil {
		return err
	}
	bySeconds, err := curvePlot(curves, labels, opt, "seconds", func(c *Curve) []float64 { return c.Seconds })
	if err != nil {
		return err
	}
	const w, h = 12 * vg.Inch, 4.5 * vg.Inch
	img := vgimg.New(w, h)
	dc := draw.New(img)
	pad := vg.Millimeter * 2
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: 2 * pad, PadY: pad, PadTop: pad, PadBottom: pad, PadLeft: pad, PadRight: pad}
	canvases := plot.Align([][]*plot.Plot{{bySteps, bySeconds}}, tiles, dc)
	bySteps.Draw(canvases[0][0])
	bySeconds.Draw(canvases[0][1])
	png := vgimg.PngCanvas{Canvas: img}
	if err := atomicfile.Write(path, 0o644, func(w io.Writer) error {
		_, err := png.WriteTo(w)
		return err
	}); err != nil {
		return fmt.Errorf("exrun: plot: %w", err)
	}
	return nil
}

// uniqueLabels numbers the labels that occur more than once.
func uniqueLabels(curves []Curve) []string {
	count := map[string]int{}
	for _, c := range curves {
		count[c.Label]++
	}
	seen := map[string]int{}
	out := make([]string, len(curves))
	for i, c := range curves {
		out[i] = c.Label
		if count[c.Label] > 1 {
			seen[c.Label]++
			out[i] = fmt.Sprintf("%s #%d", c.Label, seen[c.Label])
		}
	}
	return out
}

func curvePlot(curves []Curve, labels []string, opt PlotOptions, xlabel string, x func(*Curve) []float64) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = opt.Title
	p.X.Label.Text = xlabel
	p.Y.Label.Text = opt.YLabel
	p.Legend.Top = opt.LowerIsBetter
	p.Add(plotter.NewGrid())
	bound := math.NaN()
	for i := range curves {
		c := &curves[i]
		xs := x(c)
		pts := make(plotter.XYs, 0, len(xs))
		for j := range xs {
			if !math.IsNaN(c.Y[j]) && !math.IsInf(c.Y[j], 0) {
				pts = append(pts, plotter.XY{X: xs[j], Y: c.Y[j]})
			}
		}
		if len(pts) == 0 {
			continue
		}
		sort.SliceStable(pts, func(a, b int) bool { return pts[a].X < pts[b].X })
		l, err := plotter.NewLine(pts)
		if err != nil {
			return nil, fmt.Errorf("exrun: plot: %s: %w", labels[i], err)
		}
		l.Color = plotutil.Color(i)
		l.Dashes = plotutil.Dashes(i / 7)
		l.Width = vg.Points(1.2)
		p.Add(l)
		p.Legend.Add(labels[i], l)
		ys := make([]float64, len(pts))
		for j, pt := range pts {
			ys[j] = pt.Y
		}
		sort.Float64s(ys)
		if opt.LowerIsBetter {
			if q := ys[len(ys)-1-len(ys)/10]; math.IsNaN(bound) || q > bound {
				bound = q
			}
		} else if q := ys[len(ys)/10]; math.IsNaN(bound) || q < bound {
			bound = q
		}
	}
	if math.IsNaN(bound) {
		return nil, fmt.Errorf("exrun: plot: no finite values")
	}
	if opt.LowerIsBetter {
		p.Y.Max = bound
	} else {
		p.Y.Min = bound
	}
	return p, nil
}
