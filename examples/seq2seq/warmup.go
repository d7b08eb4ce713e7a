package main

import (
	"encoding/binary"
	"errors"

	"github.com/backpropq/backpropq/infer"
	"github.com/backpropq/backpropq/nn"
)

// bpqEstimator is what the session uses of a Backprop-Q estimator.
type bpqEstimator interface {
	infer.Stateful
	infer.TraceEstimator
	infer.CriticHolder
}

// warmupQ is the Backprop-Q estimator of a run with -critic-warmup: the
// control variate, unbiased whatever the critic, while warming is set,
// then main; both on one set of critics, which train the same way
// throughout.
type warmupQ struct {
	warm    *infer.QControlVariate
	main    bpqEstimator
	warming bool
}

func (w *warmupQ) current() bpqEstimator {
	if w.warming {
		return w.warm
	}
	return w.main
}

func (w *warmupQ) Unbiased() bool { return w.current().Unbiased() }

func (w *warmupQ) Surrogate(sc *infer.SiteContext) (infer.Term, error) {
	return w.current().Surrogate(sc)
}

func (w *warmupQ) TracePhase() infer.TracePhase { return w.main.TracePhase() }
func (w *warmupQ) QCritics() *infer.Critics     { return w.main.QCritics() }
func (w *warmupQ) Params() []*nn.Param          { return w.main.Params() }

// MarshalState returns the states of main and warm, each after its length.
func (w *warmupQ) MarshalState() ([]byte, error) {
	var out []byte
	for _, e := range []bpqEstimator{w.main, w.warm} {
		b, err := e.MarshalState()
		if err != nil {
			return nil, err
		}
		out = binary.LittleEndian.AppendUint64(out, uint64(len(b)))
		out = append(out, b...)
	}
	return out, nil
}

// UnmarshalState restores what MarshalState returned.
func (w *warmupQ) UnmarshalState(data []byte) error {
	var parts [2][]byte
	for i := range parts {
		if len(data) < 8 || uint64(len(data)-8) < binary.LittleEndian.Uint64(data) {
			return errors.New("seq2seq: truncated warm-up estimator state")
		}
		n := binary.LittleEndian.Uint64(data)
		parts[i], data = data[8:8+n], data[8+n:]
	}
	if len(data) != 0 {
		return errors.New("seq2seq: trailing bytes after the warm-up estimator state")
	}
	if err := w.main.UnmarshalState(parts[0]); err != nil {
		return err
	}
	return w.warm.UnmarshalState(parts[1])
}
