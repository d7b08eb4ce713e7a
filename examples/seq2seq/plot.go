package main

import (
	"fmt"

	"github.com/backpropq/backpropq/examples/internal/exrun"
)

// readRuns reads metrics files and returns one curve of the validation
// greedy edit distance per run id, in the order the runs first appear.
func readRuns(files []string) ([]exrun.Curve, error) {
	recs, err := exrun.ReadJSONL[record](files...)
	if err != nil {
		return nil, err
	}
	var points []exrun.Point
	for _, r := range recs {
		if r.ValidEdit == nil || r.TestEdit != nil {
			continue // training records, and the final summary
		}
		label := r.Trainer
		if r.BPQMode != "" {
			label += " " + r.BPQMode
		}
		points = append(points, exrun.Point{Run: r.RunID, Label: label,
			Step: float64(r.Step), Seconds: r.Seconds, Y: *r.ValidEdit})
	}
	runs := exrun.CurvesByRun(points)
	if len(runs) == 0 {
		return nil, fmt.Errorf("no validation records in %v (train with -eval-every > 0)", files)
	}
	return runs, nil
}

// plotFiles plots the runs of the metrics files into a PNG with two panels:
// the validation edit distance against steps and against seconds.
func plotFiles(out string, files []string) error {
	if len(files) == 0 {
		return fmt.Errorf("plot: no metrics files given")
	}
	runs, err := readRuns(files)
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	return exrun.PlotCurves(out, runs, exrun.PlotOptions{Title: "validation edit distance (greedy decode)",
		YLabel: "mean edit distance", LowerIsBetter: true})
}
