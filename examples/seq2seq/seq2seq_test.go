package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/examples/internal/exrun"
	"github.com/backpropq/backpropq/infer"
	"github.com/backpropq/backpropq/internal/ckpt"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/q"
)

// opts returns the options of a short quiet run with extra flags args.
func opts(t *testing.T, args ...string) options {
	t.Helper()
	fs := flag.NewFlagSet("seq2seq", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	base := []string{"-quiet", "-duration", "0", "-batch", "8", "-eval-every", "0", "-log-every", "1", "-eval-limit", "40"}
	o, err := parseFlags(fs, append(base, args...))
	require.NoError(t, err)
	return o
}

// tokens turns a string of digits ("$" for the end token) into tokens.
func tokens(s string) []int {
	out := make([]int, 0, len(s))
	for _, c := range s {
		if c == '$' {
			out = append(out, eos)
		} else {
			out = append(out, int(c-'0'))
		}
	}
	return out
}

func TestEditDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "123", 3},
		{"123", "", 3},
		{"123", "123", 0},
		{"123", "124", 1},  // substitution
		{"1234", "124", 1}, // deletion
		{"124", "1234", 1}, // insertion
		{"5388", "3588", 2},
		{"0123456789", "9876543210", 10},
		{"1122", "2211", 4},
		{"01234", "12345", 2}, // drop the 0, append the 5
	} {
		got := editDistance(tokens(c.a), tokens(c.b))
		assert.Equal(t, c.want, got, "%q -> %q", c.a, c.b)
		assert.Equal(t, got, editDistance(tokens(c.b), tokens(c.a)), "symmetric %q %q", c.a, c.b)
	}
	assert.Equal(t, tokens("12"), untilEOS(tokens("12$34")))
	assert.Equal(t, tokens("12"), untilEOS(tokens("12")))
	assert.Equal(t, "12$", tokenString(tokens("12$")))
}

func TestSentenceBLEU(t *testing.T) {
	assert.Equal(t, 1.0, sentenceBLEU(tokens("0123456"), tokens("0123456")))
	assert.Equal(t, 0.0, sentenceBLEU(tokens("999"), tokens("0123")), "no digit in common")
	assert.Equal(t, 0.0, sentenceBLEU(nil, tokens("0123")), "empty output")
	// hyp 0124 against ref 01234: unigrams 4/4, bigrams (2+1)/(3+1),
	// trigrams (1+1)/(2+1), 4-grams (0+1)/(1+1); brevity exp(1 - 5/4).
	want := math.Exp(1-5.0/4) * math.Pow(1*0.75*(2.0/3)*0.5, 0.25)
	assert.InDelta(t, want, sentenceBLEU(tokens("0124"), tokens("01234")), 1e-12)
	// Clipping: repeated digits match at most as often as in the reference.
	assert.InDelta(t, math.Pow(0.25*(1.0/4)*(1.0/3)*(1.0/2), 0.25), sentenceBLEU(tokens("1111"), tokens("1234")), 1e-12)
	assert.Equal(t, 0.0, costs["bleu"](tokens("0123"), tokens("0123")))
	assert.Equal(t, 2.0, costs["edit"](tokens("0123"), tokens("01")))
}

func TestDataAreDeterministicAndSorted(t *testing.T) {
	a, b := makeSet(testSeed, 300), makeSet(testSeed, 300)
	require.Equal(t, a, b)
	assert.NotEqual(t, a, makeSet(validSeed, 300))
	lengths := map[int]bool{}
	for _, e := range a {
		require.GreaterOrEqual(t, len(e.src), minLen)
		require.LessOrEqual(t, len(e.src), maxLen)
		lengths[len(e.src)] = true
		require.True(t, slices.IsSorted(e.tgt), "%v", e.tgt)
		sorted := slices.Clone(e.src)
		slices.Sort(sorted)
		require.Equal(t, sorted, e.tgt, "the target is the sorted input")
		for _, d := range e.src {
			require.True(t, d >= 0 && d < digits)
		}
	}
	assert.Len(t, lengths, maxLen-minLen+1, "every length occurs in 300 draws")
	assert.Equal(t, trainBatch(1, 7, 16), trainBatch(1, 7, 16))
	assert.NotEqual(t, trainBatch(1, 7, 16), trainBatch(1, 8, 16))
	assert.NotEqual(t, trainBatch(1, 7, 16), trainBatch(2, 7, 16))
}

// TestProgramMasksEndedRows checks the stochastic program's trace: the
// token sites of a row that has emitted the end token are masked, the cost
// is the edit distance of the output to the target and depends on every
// token site, and each y[t] hands its critic the decoder state.
func TestProgramMasksEndedRows(t *testing.T) {
	store := nn.NewStore()
	m, err := newSeq2seq(rand.New(rand.NewPCG(3, 4)), store)
	require.NoError(t, err)
	exs := makeSet(5, 64)
	p := program{m: m, exs: exs, criticInputs: true, greedyCost: true}
	tr, err := p.Run(ppl.Config{Tape: ad.NewTape(), Rand: rand.New(rand.NewPCG(1, 2)), Params: store, Batch: len(exs)})
	require.NoError(t, err)
	out := make([][]int, len(exs))
	alive := make([]bool, len(exs))
	for r := range alive {
		alive[r] = true
	}
	var ids []int
	ended := 0
	for t0 := 0; ; t0++ {
		s := tr.Site(ppl.At("y", t0))
		if s == nil {
			require.Greater(t, t0, 0)
			break
		}
		require.True(t, s.Stochastic())
		ids = append(ids, s.ID)
		require.NotNil(t, s.Mask, "y[%d] has a mask", t0)
		require.NotNil(t, tr.Site(ppl.At("y", t0)+q.InputSuffix), "y[%d] has critic inputs", t0)
		for r := range exs {
			want := 0.0
			if alive[r] {
				want = 1
			}
			require.Equal(t, want, s.Mask.Data()[r], "mask of y[%d] row %d", t0, r)
			if alive[r] {
				v := int(s.Value.Data()[r])
				out[r] = append(out[r], v)
				if v == eos {
					alive[r] = false
					ended++
				}
			}
		}
	}
	assert.Greater(t, ended, 0, "some rows end before the last step")
	cost := tr.Site(costAddr)
	require.NotNil(t, cost)
	for r, e := range exs {
		assert.Equal(t, float64(editDistance(untilEOS(out[r]), e.tgt)), cost.Cost.Data()[r], "row %d", r)
	}
	for _, id := range ids {
		assert.True(t, cost.Parents.Has(id), "the cost depends on site %d", id)
	}
	g := tr.Site(greedyAddr)
	require.NotNil(t, g)
	gtokens, _ := m.decode(m.encode(ad.NewTape(), exs), maxSteps, true, greedy)
	assert.Equal(t, editCosts(gtokens, exs), g.Value.Data())
}

// TestTeacherForcingLoss checks that the maximum-likelihood program's loss
// is the negative log-likelihood of the targets and their end tokens only.
func TestTeacherForcingLoss(t *testing.T) {
	store := nn.NewStore()
	m, err := newSeq2seq(rand.New(rand.NewPCG(3, 4)), store)
	require.NoError(t, err)
	exs := makeSet(6, 16)
	tp := ad.NewTape()
	tr, err := program{m: m, exs: exs, teacher: true}.Run(ppl.Config{Tape: tp, Rand: rand.New(rand.NewPCG(1, 2)), Params: store, Batch: len(exs)})
	require.NoError(t, err)
	got := 0.0
	for _, s := range tr.Sites() {
		if s.IsCost() {
			got += ad.Sum(s.ScaledCost()).Item()
		}
	}
	// The same by hand: teacher-forced decoding, one row at a time.
	want := 0.0
	for _, e := range exs {
		tp2 := ad.NewTape()
		target := append(slices.Clone(e.tgt), eos)
		i := 0
		m.decode(m.encode(tp2, []example{e}), len(target), true, func(_ int, _, logits *ad.Tensor, _ []float64) *ad.Tensor {
			lp := ad.LogSoftmax(logits).Data()
			want -= lp[target[i]]
			y := tp2.Full(1, 1, float64(target[i]))
			i++
			return y
		})
		require.Equal(t, len(target), i)
	}
	assert.InDelta(t, want, got, 1e-9*math.Abs(want))
}

func TestSelfCriticalBaseline(t *testing.T) {
	tp := ad.NewTape()
	store := nn.NewStore()
	m, err := newSeq2seq(rand.New(rand.NewPCG(3, 4)), store)
	require.NoError(t, err)
	exs := makeSet(7, 8)
	tr, err := program{m: m, exs: exs, greedyCost: true}.Run(ppl.Config{Tape: tp, Rand: rand.New(rand.NewPCG(1, 2)), Params: store, Batch: len(exs)})
	require.NoError(t, err)
	signal := tp.FromData(8, 1, []float64{1, 2, 3, 4, 5, 6, 7, 8})
	got, loss, commit, err := greedyBaseline{}.Center(&infer.SiteContext{Trace: tr}, signal)
	require.NoError(t, err)
	assert.Nil(t, loss)
	assert.Nil(t, commit)
	g := tr.Site(greedyAddr).Value.Data()
	for r := range 8 {
		assert.Equal(t, float64(r+1)-g[r], got.Data()[r])
	}
	tr2, err := program{m: m, exs: exs}.Run(ppl.Config{Tape: tp, Rand: rand.New(rand.NewPCG(1, 2)), Params: store, Batch: len(exs)})
	require.NoError(t, err)
	_, _, _, err = greedyBaseline{}.Center(&infer.SiteContext{Trace: tr2}, signal)
	assert.ErrorContains(t, err, "no greedy cost")
}

// trainers and modes every test runs.
var allTrainers = [][]string{
	{"-trainer", "mle"},
	{"-trainer", "reinforce"},
	{"-trainer", "self-critical"},
	{"-trainer", "bpq", "-bpq-mode", "local"},
	{"-trainer", "bpq", "-bpq-mode", "cv"},
	{"-trainer", "bpq", "-bpq-mode", "adv"},
	{"-trainer", "mle+bpq", "-warm", "2"},
	{"-trainer", "mle+self-critical", "-warm", "2"},
	{"-trainer", "self-critical", "-cost", "bleu"},
	{"-trainer", "bpq", "-bpq-mode", "local", "-critic-warmup", "4"},
}

// trainTo runs o and returns its checkpoint's sections and metrics records.
func trainTo(t *testing.T, o options, dir, name string) (map[string][]byte, []record, *result) {
	t.Helper()
	o.save = filepath.Join(dir, name+".ckpt")
	o.metrics = filepath.Join(dir, name+".jsonl")
	res, err := train(context.Background(), o, io.Discard)
	require.NoError(t, err)
	sections, err := ckpt.ReadFile(o.save)
	require.NoError(t, err)
	recs, err := exrun.ReadJSONL[record](o.metrics)
	require.NoError(t, err)
	return sections, recs, res
}

// stepRecords returns the per-step training records with times and run ids
// cleared.
func stepRecords(recs []record) []record {
	var out []record
	for _, r := range recs {
		if r.TestEdit != nil {
			continue
		}
		r.Seconds, r.RunID = 0, ""
		out = append(out, r)
	}
	return out
}

// TestEveryTrainerRunsAndIsDeterministic runs each trainer for a few steps
// twice with one seed: the runs agree bit for bit, and the scores are in
// range.
func TestEveryTrainerRunsAndIsDeterministic(t *testing.T) {
	for _, args := range allTrainers {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			dir := t.TempDir()
			o := opts(t, append(args, "-steps", "4")...)
			a, recsA, res := trainTo(t, o, dir, "a")
			b, recsB, _ := trainTo(t, o, dir, "b")
			require.EqualValues(t, 4, res.steps)
			for name, raw := range a {
				if name != metaSection {
					assert.True(t, bytes.Equal(raw, b[name]), "section %s differs", name)
				}
			}
			assert.Equal(t, stepRecords(recsA), stepRecords(recsB))
			for _, s := range []score{res.valid, res.test, res.testSample} {
				assert.True(t, s.Edit >= 0 && s.Edit <= maxSteps, "edit %v", s.Edit)
				assert.True(t, s.Exact >= 0 && s.Exact <= 1, "exact %v", s.Exact)
			}
			for _, r := range stepRecords(recsA) {
				assert.False(t, math.IsNaN(r.Train) || math.IsInf(r.Train, 0))
			}
			if strings.HasPrefix(args[1], "mle+") {
				assert.Equal(t, []string{"mle", "mle", "rl", "rl"}, []string{recsA[0].Phase, recsA[1].Phase, recsA[2].Phase, recsA[3].Phase})
			}
		})
	}
}

// TestResumeIsBitIdentical checks that a run saved after a few steps and
// resumed ends with the same parameters, optimizer and estimator state
// and metrics, bit for bit, as one that was never interrupted.
func TestResumeIsBitIdentical(t *testing.T) {
	list := allTrainers
	if testing.Short() {
		list = [][]string{{"-trainer", "self-critical"}, {"-trainer", "mle+bpq", "-warm", "2"}}
	}
	for _, args := range list {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			dir := t.TempDir()
			straight, recsS, _ := trainTo(t, opts(t, append(args, "-steps", "6", "-workers", "2")...), dir, "straight")
			trainTo(t, opts(t, append(args, "-steps", "3", "-workers", "2")...), dir, "part")
			resumed, recsR, res := trainTo(t, opts(t, "-steps", "6", "-resume", filepath.Join(dir, "part.ckpt")), dir, "part")
			require.EqualValues(t, 6, res.steps)
			require.Equal(t, ckpt.Names(straight), ckpt.Names(resumed))
			for name, raw := range straight {
				if name != metaSection {
					assert.True(t, bytes.Equal(raw, resumed[name]), "section %s differs", name)
				}
			}
			var ms, mr meta
			require.NoError(t, json.Unmarshal(straight[metaSection], &ms))
			require.NoError(t, json.Unmarshal(resumed[metaSection], &mr))
			assert.Equal(t, ms.AvgSum, mr.AvgSum)
			assert.Equal(t, stepRecords(recsS), stepRecords(recsR))
		})
	}
}

func TestBadFlags(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.ckpt")
	require.NoError(t, os.WriteFile(garbage, []byte("not a checkpoint"), 0o644))
	good := filepath.Join(dir, "good.ckpt")
	o := opts(t, "-trainer", "reinforce", "-steps", "1", "-save", good)
	_, err := train(context.Background(), o, io.Discard)
	require.NoError(t, err)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-trainer", "ppo"}, `unknown -trainer "ppo"`},
		{[]string{"-cost", "rouge"}, `unknown -cost "rouge"`},
		{[]string{"-trainer", "bpq", "-bpq-mode", "relaxed"}, `unknown -bpq-mode "relaxed"`},
		{[]string{"-trainer", "bpq", "-lambda", "1.5"}, "-lambda must be in [0, 1]"},
		{[]string{"-trainer", "mle", "-critics", filepath.Join(dir, "c")}, "trainer mle learns no critics"},
		{[]string{"-workers", "9"}, "need 1 <= -workers <= -batch"},
		{[]string{"-batch", "0"}, "-batch must be at least 1"},
		{[]string{"-lr", "0"}, "-lr must be positive"},
		{[]string{"-trainer", "mle+bpq", "-warm", "-1"}, "-warm must be at least 0"},
		{[]string{"-trainer", "bpq", "-critic-warmup", "-2"}, "-critic-warmup must be at least 0"},
		{[]string{"-eval-limit", "-1"}, "-eval-limit must be at least 0"},
		{[]string{"-resume", filepath.Join(dir, "missing.ckpt")}, "resume"},
		{[]string{"-resume", garbage}, "resume " + garbage},
		{[]string{"-resume", good, "-trainer", "bpq"}, "-trainer bpq differs from the checkpoint's reinforce"},
		{[]string{"-mode", "plot"}, "-mode plot needs -plot"},
		{[]string{"-mode", "eval"}, `unknown -mode "eval"`},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			// The flags alone are checked first; what depends on the
			// checkpoint when the run starts.
			fs := flag.NewFlagSet("seq2seq", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			o, err := parseFlags(fs, append([]string{"-quiet", "-duration", "0", "-batch", "8", "-eval-limit", "40", "-steps", "1"}, c.args...))
			if err == nil {
				err = run(context.Background(), o, io.Discard)
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}

// TestCriticsSaveAndLoad checks -critics: a bpq run saves its critic, the
// one template critic of every y[t] with the decoder state among its
// inputs, and a later run loads it.
func TestCriticsSaveAndLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bpq.critics")
	var out bytes.Buffer
	o := opts(t, "-trainer", "bpq", "-steps", "2", "-critics", path)
	o.quiet = false
	_, err := train(context.Background(), o, &out)
	require.NoError(t, err)
	assert.NotContains(t, out.String(), "loaded critics")
	set := q.NewSet(q.Config{Kind: q.MLPKind, Templates: []string{"y[*]"}})
	require.NoError(t, q.Load(path, set, q.LoadOptions{}))
	require.Equal(t, []string{"y[*]|edit"}, set.Keys())
	out.Reset()
	_, err = train(context.Background(), o, &out)
	require.NoError(t, err)
	assert.Contains(t, out.String(), "loaded critics "+path)
	require.NoError(t, os.WriteFile(path, []byte("damaged"), 0o644))
	_, err = train(context.Background(), o, io.Discard)
	assert.ErrorContains(t, err, "-critics "+path)
}

func TestCancelledRunSaves(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	o := opts(t, "-trainer", "bpq", "-steps", "5", "-save", filepath.Join(dir, "a.ckpt"), "-critics", filepath.Join(dir, "a.critics"))
	var out bytes.Buffer
	res, err := train(ctx, o, &out)
	require.NoError(t, err)
	assert.EqualValues(t, 0, res.steps)
	assert.Contains(t, out.String(), "interrupted after step 0")
	_, err = os.Stat(o.save)
	assert.NoError(t, err)
	_, err = os.Stat(o.critics)
	assert.NoError(t, err)
}

func TestPlot(t *testing.T) {
	dir := t.TempDir()
	metrics := filepath.Join(dir, "m.jsonl")
	png := filepath.Join(dir, "m.png")
	o := opts(t, "-trainer", "mle", "-steps", "4", "-eval-every", "2", "-metrics", metrics, "-plot", png)
	_, err := train(context.Background(), o, io.Discard)
	require.NoError(t, err)
	runs, err := readRuns([]string{metrics})
	require.NoError(t, err)
	require.Len(t, runs, 1)
	assert.Equal(t, []float64{2, 4}, runs[0].Steps)
	raw, err := os.ReadFile(png)
	require.NoError(t, err)
	assert.True(t, bytes.HasPrefix(raw, []byte("\x89PNG")))
	require.NoError(t, os.Remove(png))
	require.NoError(t, run(context.Background(), opts(t, "-mode", "plot", "-plot", png, metrics), io.Discard))
	_, err = os.Stat(png)
	assert.NoError(t, err)
	bad := filepath.Join(dir, "bad.jsonl")
	require.NoError(t, os.WriteFile(bad, []byte("{\"step\": 1}\n{oops\n"), 0o644))
	assert.ErrorContains(t, plotFiles(png, []string{bad}), "bad.jsonl:2")
}
