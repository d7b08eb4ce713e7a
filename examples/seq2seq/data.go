package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
)

// The vocabulary: the digits 0-9 are tokens 0-9, then the end token and
// the decoder's start token.
const (
	digits = 10
	eos    = 10
	bos    = 11
	// outputs is the size of the decoder's output distribution: the
	// digits and the end token.
	outputs = 11
	// vocab counts every token, the start token included.
	vocab = 12
	// minLen and maxLen bound the length of an input string.
	minLen, maxLen = 5, 12
	// maxSteps is the decoder's longest output, the end token included.
	maxSteps = maxLen + 2
)

// Seeds of the fixed validation and test sets; the training examples come
// from -seed and the step.
const (
	validSeed = 0x76616c6964
	testSeed  = 0x74657374
	trainSalt = 0x747261696e
)

// example is one input string and its target, the input sorted.
type example struct {
	src, tgt []int
}

// newExample draws an input of minLen to maxLen uniform digits from rng.
func newExample(rng *rand.Rand) example {
	n := minLen + rng.IntN(maxLen-minLen+1)
	src := make([]int, n)
	for i := range src {
		src[i] = rng.IntN(digits)
	}
	tgt := slices.Clone(src)
	slices.Sort(tgt)
	return example{src: src, tgt: tgt}
}

// makeSet returns n examples drawn from a source seeded by seed.
func makeSet(seed uint64, n int) []example {
	rng := rand.New(rand.NewPCG(seed, 0x5e7))
	out := make([]example, n)
	for i := range out {
		out[i] = newExample(rng)
	}
	return out
}

// trainBatch returns the b training examples of step t: they depend only on
// the seed and t, so a resumed run sees the same ones.
func trainBatch(seed uint64, t int64, b int) []example {
	rng := rand.New(rand.NewPCG(seed^trainSalt, uint64(t)))
	out := make([]example, b)
	for i := range out {
		out[i] = newExample(rng)
	}
	return out
}

// editDistance returns the Levenshtein distance between token strings a
// and b: the fewest insertions, deletions and substitutions that turn a
// into b.
func editDistance(a, b []int) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			sub := prev[j-1]
			if a[i-1] != b[j-1] {
				sub++
			}
			cur[j] = min(sub, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// tokenString writes tokens as digits, the end token as "$".
func tokenString(tokens []int) string {
	var b strings.Builder
	for _, t := range tokens {
		switch {
		case t < digits:
			b.WriteByte(byte('0' + t))
		case t == eos:
			b.WriteByte('$')
		default:
			b.WriteByte('^')
		}
	}
	return b.String()
}

// untilEOS returns the tokens before the first end token.
func untilEOS(tokens []int) []int {
	if i := slices.Index(tokens, eos); i >= 0 {
		return tokens[:i]
	}
	return tokens
}

// sentenceBLEU returns the BLEU score of hyp against the single reference
// ref with n-grams up to 4 (Papineni et al., 2002), smoothed as Lin and
// Och (2004) do for sentences: the precisions of 2- to 4-grams count one
// extra match and one extra n-gram, so that a short output that matches
// no 4-gram still scores above zero. An output with no matching digit, or
// an empty one, scores 0; the reference itself scores 1.
func sentenceBLEU(hyp, ref []int) float64 {
	if len(hyp) == 0 {
		return 0
	}
	logSum := 0.0
	for n := 1; n <= 4; n++ {
		refCount := map[string]int{}
		for i := 0; i+n <= len(ref); i++ {
			refCount[tokenString(ref[i:i+n])]++
		}
		matched, total := 0, 0
		for i := 0; i+n <= len(hyp); i++ {
			g := tokenString(hyp[i : i+n])
			total++
			if refCount[g] > 0 {
				refCount[g]--
				matched++
			}
		}
		p := 0.0
		if n == 1 {
			if matched == 0 {
				return 0
			}
			p = float64(matched) / float64(total)
		} else {
			p = float64(matched+1) / float64(total+1)
		}
		logSum += math.Log(p)
	}
	bp := 1.0
	if len(hyp) < len(ref) {
		bp = math.Exp(1 - float64(len(ref))/float64(len(hyp)))
	}
	return bp * math.Exp(logSum/4)
}

// costs are the values of the -cost flag: the sequence cost of an output
// (up to its end token) given the target.
var costs = map[string]func(out, tgt []int) float64{
	"edit": func(out, tgt []int) float64 { return float64(editDistance(out, tgt)) },
	"bleu": func(out, tgt []int) float64 { return 1 - sentenceBLEU(out, tgt) },
}
