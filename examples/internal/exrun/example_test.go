package exrun_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/backpropq/backpropq/examples/internal/exrun"
)

// ExampleBudget shows the -steps and -duration semantics.
func ExampleBudget() {
	b := exrun.Budget{Steps: 1000, Duration: time.Minute}
	fmt.Println(b.Done(999, 10*time.Second), b.Done(1000, 10*time.Second), b.Done(10, time.Minute))
	// Output: false true true
}

// ExampleProgress writes log lines, since its Bar is not a terminal.
func ExampleProgress() {
	p := exrun.NewProgress(exrun.ProgressOptions{Total: 300, Objective: "ELBO", Out: os.Stdout, Bar: &bytes.Buffer{}})
	for step := int64(1); step <= 300; step++ {
		seconds := float64(step) / 50 // a fake clock: 50 steps/s
		p.Update(step, seconds, -200+float64(step)/10, step%100 == 0)
	}
	p.Finish()
	// Output:
	// step     100      2.0s    50.0 steps/s  ELBO  -190.00  4s left
	// step     200      4.0s    50.0 steps/s  ELBO  -180.00  2s left
	// step     300      6.0s    50.0 steps/s  ELBO  -170.00  0s left
}

// ExampleReadJSONL writes metrics records and reads them back.
func ExampleReadJSONL() {
	dir, _ := os.MkdirTemp("", "exrun")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "run.jsonl")
	type record struct {
		Step int64   `json:"step"`
		ELBO float64 `json:"elbo"`
	}
	w, err := exrun.OpenMetrics(path)
	if err != nil {
		fmt.Println(err)
		return
	}
	for step := int64(1); step <= 3; step++ {
		_ = w.Write(record{Step: step, ELBO: -100 / float64(step)})
	}
	_ = w.Close()
	recs, err := exrun.ReadJSONL[record](path)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range recs {
		fmt.Printf("%d %.2f\n", r.Step, r.ELBO)
	}
	// Output:
	// 1 -100.00
	// 2 -50.00
	// 3 -33.33
}

// ExamplePlotCurves plots two runs.
func ExamplePlotCurves() {
	dir, _ := os.MkdirTemp("", "exrun")
	defer os.RemoveAll(dir)
	a := exrun.Curve{Label: "arm", Steps: []float64{100, 200}, Seconds: []float64{1, 2}, Y: []float64{-200, -190}}
	b := exrun.Curve{Label: "disarm", Steps: []float64{100, 200}, Seconds: []float64{0.8, 1.6}, Y: []float64{-198, -187}}
	err := exrun.PlotCurves(filepath.Join(dir, "elbo.png"), []exrun.Curve{a, b}, exrun.PlotOptions{Title: "training ELBO", YLabel: "ELBO (nats)"})
	fmt.Println(err)
	// Output: <nil>
}
