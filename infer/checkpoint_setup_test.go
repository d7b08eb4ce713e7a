package infer

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/vi"
)

// setups are training setups that differ from the mixture regression in
// one respect each, in the order of the checks: the estimators, the
// model's parameters, the optimizer.
var setups = map[string]func() *SVI{
	"mixture": newMixtureSetup,
	"other model": func() *SVI {
		s := &SVI{Objective: vi.Program{Model: switchModel}}
		return like(s)
	},
	"wider layer": func() *SVI {
		never := false
		layer := nn.NewLinear(3, 2, rand.New(rand.NewPCG(3, 4)))
		s := &SVI{Objective: vi.Program{Model: func(ctx *ppl.Ctx) {
			ppl.Module(ctx, "net", layer)
			mixtureRegression(nn.NewLinear(3, 1, rand.New(rand.NewPCG(3, 4))), &never)(ctx.Scope("inner"))
		}}}
		return like(s)
	},
	"no baseline": func() *SVI {
		s := newMixtureSetup()
		s.Estimators = Estimators{Default: ScoreFunction{}}
		return s
	},
	"per-site estimator": func() *SVI {
		s := newMixtureSetup()
		s.Estimators.Sites = map[string]Estimator{"k": ScoreFunction{Baseline: NewNVIL(4)}}
		return s
	},
	"sgd": func() *SVI {
		s := newMixtureSetup()
		s.Optimizer = &nn.SGD{LR: 0.05}
		return s
	},
}

// newMixtureSetup returns the mixture regression's SVI, which never fails.
func newMixtureSetup() *SVI {
	never := false
	return newMixtureSVI(&never)
}

// like completes s with the mixture setup's estimators, optimizer and run
// configuration.
func like(s *SVI) *SVI {
	never := false
	base := newMixtureSVI(&never)
	base.Objective = s.Objective
	return base
}

// trainedCheckpoint returns the checkpoint of the named setup after two
// steps.
func trainedCheckpoint(t testing.TB, name string) []byte {
	s := setups[name]()
	for i := 0; i < 2; i++ {
		_, err := s.Step()
		require.NoError(t, err, name)
	}
	var buf bytes.Buffer
	require.NoError(t, s.EncodeCheckpoint(&buf))
	return buf.Bytes()
}

// loadOrFirstStep restores data into s and takes a step, and returns the
// first error, saying whether it came from the restore.
func loadOrFirstStep(s *SVI, data []byte) (atLoad bool, err error) {
	if err := s.DecodeCheckpoint(bytes.NewReader(data)); err != nil {
		return true, err
	}
	_, err = s.Step()
	return false, err
}

// A checkpoint of another training setup never loads: into a trained run
// the load fails; into a fresh run whose parameters are created on first
// use the load or its first step fails, and the run is then as fresh as
// before (its next step is a fresh run's first). A checkpoint of the same
// setup loads.
func TestRestoreRejectsAnotherSetup(t *testing.T) {
	saved := map[string][]byte{}
	for name := range setups {
		saved[name] = trainedCheckpoint(t, name)
	}
	for from := range setups {
		for into := range setups {
			t.Run(from+" into "+into, func(t *testing.T) {
				trained := setups[into]()
				_, err := trained.Step()
				require.NoError(t, err)
				before := checkpointBytes(t, trained)
				err = trained.DecodeCheckpoint(bytes.NewReader(saved[from]))
				fresh := setups[into]()
				freshBefore := checkpointBytes(t, fresh)
				atLoad, freshErr := loadOrFirstStep(fresh, saved[from])
				if from == into {
					require.NoError(t, err)
					require.NoError(t, freshErr)
					return
				}
				require.Error(t, err)
				require.Equal(t, before, checkpointBytes(t, trained))
				require.Error(t, freshErr)
				if !atLoad {
					require.ErrorContains(t, freshErr, "the restore is undone")
				}
				require.Equal(t, freshBefore, checkpointBytes(t, fresh))
				clean := setups[into]()
				want, err := clean.Step()
				require.NoError(t, err)
				got, err := fresh.Step()
				require.NoError(t, err)
				require.Equal(t, fmt.Sprint(want), fmt.Sprint(got))
			})
		}
	}
}

// The first difference is named.
func TestRestoreNamesTheFirstDifference(t *testing.T) {
	cases := []struct{ from, into, want string }{
		{"no baseline", "mixture", "estimator default"},
		{"mixture", "per-site estimator", "no estimator site/k"},
		{"per-site estimator", "mixture", "estimator site/k"},
		{"mixture", "sgd", `"adam" optimizer, not "sgd"`},
		{"mixture", "other model", `parameter "gate" is not in the checkpoint`},
		{"other model", "mixture", `the checkpoint holds parameter "gate"`},
		{"mixture", "wider layer", `parameter "inner/mix/logits" is not in the checkpoint`},
	}
	for _, tc := range cases {
		s := setups[tc.into]()
		_, err := s.Step()
		require.NoError(t, err)
		err = s.DecodeCheckpoint(bytes.NewReader(trainedCheckpoint(t, tc.from)))
		require.ErrorContains(t, err, tc.want, "%s into %s", tc.from, tc.into)
	}
	// Into a fresh run, a model that creates a parameter the checkpoint
	// lacks is found at the first step.
	s := setups["other model"]()
	require.NoError(t, s.DecodeCheckpoint(bytes.NewReader(trainedCheckpoint(t, "mixture"))))
	_, err := s.Step()
	require.ErrorContains(t, err, `the model created parameter "gate"`)
}

// A warm start takes the parameters of another setup and nothing else.
func TestRestoreWarmStart(t *testing.T) {
	src := setups["mixture"]()
	for i := 0; i < 3; i++ {
		_, err := src.Step()
		require.NoError(t, err)
	}
	sections, err := src.Sections()
	require.NoError(t, err)

	s := setups["sgd"]()
	require.Error(t, s.Restore(sections, LoadOptions{}))
	require.NoError(t, s.Restore(sections, LoadOptions{WarmStart: true}))
	require.Zero(t, s.StepCount())
	for _, p := range src.Params.Params() {
		require.Equal(t, p.Value.RawMatrix().Data, s.Params.Get(p.Name).Value.RawMatrix().Data, p.Name)
	}
	_, err = s.Step()
	require.NoError(t, err)
}

// FuzzRestore feeds Restore damaged bytes and valid checkpoints of other
// training setups: it never panics, and whatever it loads is of the
// setup's own kind (a checkpoint of the same setup), or the first step
// fails and the run is as fresh as before.
func FuzzRestore(f *testing.F) {
	for name := range setups {
		f.Add(trainedCheckpoint(f, name))
	}
	f.Add([]byte{})
	f.Add([]byte("BPQCKPT\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, into := range []string{"mixture", "other model"} {
			s := setups[into]()
			fresh := checkpointBytes(t, s)
			atLoad, err := loadOrFirstStep(s, data)
			if err == nil {
				// Only a checkpoint of this setup loads: its parameters
				// are this setup's and nothing more.
				want := setups[into]()
				_, err := want.Step()
				require.NoError(t, err)
				require.Equal(t, paramShapes(want), paramShapes(s))
				continue
			}
			if atLoad || s.StepCount() == 0 {
				require.Equal(t, fresh, checkpointBytes(t, s), "a failed load changes nothing")
			}
		}
	})
}

// paramShapes lists the names and shapes of the parameters of s.
func paramShapes(s *SVI) string {
	var out []string
	for _, p := range s.Params.Params() {
		r, c := p.Value.Dims()
		out = append(out, fmt.Sprintf("%s[%dx%d]", p.Name, r, c))
	}
	return fmt.Sprint(out)
}
