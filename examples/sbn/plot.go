package main

import (
	"fmt"

	"github.com/backpropq/backpropq/examples/internal/exrun"
)

// readRuns reads metrics files and returns one curve of the running-mean
// training ELBO per run id, in the order the runs first appear.
func readRuns(files []string) ([]exrun.Curve, error) {
	recs, err := exrun.ReadJSONL[record](files...)
	if err != nil {
		return nil, err
	}
	var points []exrun.Point
	for _, r := range recs {
		if r.TestELBO != nil {
			continue // the final summary repeats the last step
		}
		points = append(points, exrun.Point{Run: r.RunID, Label: r.Model + " " + r.Estimator,
			Step: float64(r.Step), Seconds: r.Seconds, Y: r.ELBOAvg})
	}
	runs := exrun.CurvesByRun(points)
	if len(runs) == 0 {
		return nil, fmt.Errorf("no metrics records in %v", files)
	}
	return runs, nil
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
	return exrun.PlotCurves(out, runs, exrun.PlotOptions{Title: "training ELBO (running mean)", YLabel: "ELBO (nats)"})
}
