package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/backpropq/backpropq/examples/internal/exrun"
)

// readCurves reads the step records of metrics files, one curve of the
// training bound per run id in order of first appearance. Runs that would
// share a label are told apart by their file's name.
func readCurves(files []string) ([]exrun.Curve, error) {
	var points []exrun.Point
	file := map[string]string{} // the file of each run
	runs := map[string]int{}    // the runs of each label
	for _, f := range files {
		recs, err := exrun.ReadJSONL[record](f)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			if r.TestELBO != nil {
				continue // the final record repeats the last step
			}
			label := r.Model
			if r.Model != "gauss" {
				label += " " + r.Estimator
			}
			if _, ok := file[r.RunID]; !ok {
				file[r.RunID] = f
				runs[label]++
			}
			points = append(points, exrun.Point{Run: r.RunID, Label: label,
				Step: float64(r.Step), Seconds: r.Seconds, Y: r.ELBOAvg})
		}
	}
	if len(points) == 0 {
		return nil, fmt.Errorf("no metrics records in %v", files)
	}
	for i, p := range points {
		if runs[p.Label] > 1 {
			base := filepath.Base(file[p.Run])
			points[i].Label += " (" + strings.TrimSuffix(base, filepath.Ext(base)) + ")"
		}
	}
	return exrun.CurvesByRun(points), nil
}

// plotFiles draws every run of the metrics files, training bound against
// steps and seconds, into a PNG at out.
func plotFiles(out string, files []string) error {
	curves, err := readCurves(files)
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	return exrun.PlotCurves(out, curves, exrun.PlotOptions{Title: "training bound per image (running mean, decay 0.99)", YLabel: "nats"})
}
