package exrun

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sync"
)

// MetricsWriter appends JSON records, one a line (JSONL), to a file. A nil
// *MetricsWriter is valid and discards everything, so a program without a
// metrics file needs no checks. It is safe for concurrent use.
type MetricsWriter struct {
	mu  sync.Mutex
	f   *os.File
	enc *json.Encoder
}

// OpenMetrics opens path for appending records, creating it if needed.
// An empty path gives a nil writer and no error.
func OpenMetrics(path string) (*MetricsWriter, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("exrun: metrics: %w", err)
	}
	return &MetricsWriter{f: f, enc: json.NewEncoder(f)}, nil
}

// Write appends v, encoded with encoding/json, as one line.
func (w *MetricsWriter) Write(v any) error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.enc.Encode(v); err != nil {
		return fmt.Errorf("exrun: metrics: %w", err)
	}
	return nil
}

// Close closes the file.
func (w *MetricsWriter) Close() error {
	if w == nil {
		return nil
	}
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("exrun: metrics: %w", err)
	}
	return nil
}

// ReadJSONL reads the records of the files, in order, decoding each line
// into a T. Blank lines are skipped. A malformed line is an error naming
// the file and line.
func ReadJSONL[T any](files ...string) ([]T, error) {
	var out []T
	for _, name := range files {
		recs, err := readFile[T](name)
		if err != nil {
			return nil, err
		}
		out = append(out, recs...)
	}
	return out, nil
}

func readFile[T any](name string) ([]T, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("exrun: %w", err)
	}
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<24)
	line := 0
	for sc.Scan() {
		line++
		if len(sc.Bytes()) == 0 {
			continue
		}
		var r T
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("exrun: %s:%d: %w", name, line, err)
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("exrun: %s: %w", name, err)
	}
	return out, nil
}
