package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/backpropq/backpropq/internal/exrun"
)

// readCurves reads the step records of metrics files, one curve of the
// training bound per run id in order of first appearance. Runs that would
// share a label are told apart by their file's name.
func readCurves(files []string) ([]exrun.Curve, error) {
	var curves []exrun.Curve
	var from []string // the file of each curve
	byID := map[string]int{}
	for _, f := range files {
		recs, err := exrun.ReadJSONL[record](f)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			if r.TestELBO != nil {
				continue // the final record repeats the last step
			}
			i, ok := byID[r.RunID]
			if !ok {
				label := r.Model
				if r.Model != "gauss" {
					label += " " + r.Estimator
				}
				i = len(curves)
				byID[r.RunID] = i
				curves = append(curves, exrun.Curve{Label: label})
				from = append(from, f)
			}
			c := &curves[i]
			c.Steps = append(c.Steps, float64(r.Step))
			c.Seconds = append(c.Seconds, r.Seconds)
			c.Y = append(c.Y, r.ELBOAvg)
		}
	}
	if len(curves) == 0 {
		return nil, fmt.Errorf("no metrics records in %v", files)
	}
	count := map[string]int{}
	for _, c := range curves {
		count[c.Label]++
	}
	for i := range curves {
		if count[curves[i].Label] > 1 {
			base := filepath.Base(from[i])
			curves[i].Label += " (" + strings.TrimSuffix(base, filepath.Ext(base)) + ")"
		}
	}
	return curves, nil
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
