package main

import (
	"fmt"

	"github.com/backpropq/backpropq/internal/exrun"
)

// readCurves reads the step records of metrics files, one curve of the
// training bound per run id in order of first appearance.
func readCurves(files []string) ([]exrun.Curve, error) {
	recs, err := exrun.ReadJSONL[record](files...)
	if err != nil {
		return nil, err
	}
	var curves []exrun.Curve
	byID := map[string]int{}
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
		}
		c := &curves[i]
		c.Steps = append(c.Steps, float64(r.Step))
		c.Seconds = append(c.Seconds, r.Seconds)
		c.Y = append(c.Y, r.ELBOAvg)
	}
	if len(curves) == 0 {
		return nil, fmt.Errorf("no metrics records in %v", files)
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
