package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/backpropq/backpropq/internal/atomicfile"
)

// curve is the training bound of one run against steps.
type curve struct {
	label string
	pts   plotter.XYs
}

// readCurves reads the step records of metrics files, one curve per run id
// in order of first appearance.
func readCurves(files []string) ([]*curve, error) {
	var curves []*curve
	byID := map[string]*curve{}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		for n := 1; sc.Scan(); n++ {
			var r record
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				f.Close()
				return nil, fmt.Errorf("%s:%d: %w", name, n, err)
			}
			if r.TestELBO != nil {
				continue // the final record repeats the last step
			}
			c := byID[r.RunID]
			if c == nil {
				label := r.Model
				if r.Model != "gauss" {
					label += " " + r.Estimator
				}
				c = &curve{label: fmt.Sprintf("%s (%d)", label, len(curves)+1)}
				byID[r.RunID] = c
				curves = append(curves, c)
			}
			c.pts = append(c.pts, plotter.XY{X: float64(r.Step), Y: r.ELBOAvg})
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	if len(curves) == 0 {
		return nil, fmt.Errorf("no metrics records in %v", files)
	}
	return curves, nil
}

// plotFiles draws every run of the metrics files, training bound against
// steps, into a PNG at out.
func plotFiles(out string, files []string) error {
	curves, err := readCurves(files)
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	p := plot.New()
	p.Title.Text = "training bound per image (running mean, decay 0.99)"
	p.X.Label.Text = "steps"
	p.Y.Label.Text = "nats"
	p.Legend.Top = false
	p.Add(plotter.NewGrid())
	for i, c := range curves {
		l, err := plotter.NewLine(c.pts)
		if err != nil {
			return fmt.Errorf("plot: %s: %w", c.label, err)
		}
		l.Color = plotutil.Color(i)
		l.Width = vg.Points(1.2)
		p.Add(l)
		p.Legend.Add(c.label, l)
	}
	wt, err := p.WriterTo(8*vg.Inch, 5*vg.Inch, "png")
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	return atomicfile.Write(out, 0o644, func(w io.Writer) error {
		_, err := wt.WriteTo(w)
		return err
	})
}
