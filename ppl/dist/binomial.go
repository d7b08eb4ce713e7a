package dist

import (
	"math"
	"math/rand/v2"

	"github.com/backpropq/backpropq/ad"
)

// Binomial is a batch of independent binomial distributions: the number of
// successes in TotalCount trials with success probability Probs (or
// log-odds Logits; set exactly one), elementwise. TotalCount must hold
// non-negative integers; all are [B x D] or broadcast to it. Values are
// counts held as floats.
//
// Support: the integers 0..TotalCount; LogProb is -Inf at any other value.
type Binomial struct {
	TotalCount    *ad.Tensor
	Logits, Probs *ad.Tensor
}

func (d Binomial) prob() *ad.Tensor {
	if d.Logits != nil {
		return d.Logits
	}
	return d.Probs
}

// Shape returns the broadcast shape of the parameters.
func (d Binomial) Shape() (batch, event int) { return shapeOf(d.TotalCount, d.prob()) }

// Sample draws counts of shape [Binomial.Shape]: by inversion when
// n·min(p, 1-p) < 10, by Hörmann's BTRS rejection otherwise.
func (d Binomial) Sample(rng *rand.Rand) *ad.Tensor {
	rows, cols := d.Shape()
	n, p := viewOf(d.TotalCount), viewOf(d.prob())
	isLogit := d.Logits != nil
	return fill(d.TotalCount.Tape(), rows, cols, func(i, j int) float64 {
		pr := p.at(i, j)
		if isLogit {
			pr = sigmoid(pr)
		}
		return sampleBinomial(rng, n.at(i, j), pr)
	})
}

// LogProb returns Σ_j log C(n_j, k_j) + k_j log p_j + (n_j-k_j) log(1-p_j)
// per row, as [B x 1] (with logits, k·l - n·softplus(l) for the last two
// terms).
func (d Binomial) LogProb(value *ad.Tensor) *ad.Tensor { return sumRows(d.LogProbElements(value)) }

// LogProbElements returns the log-pmf of each element of value, [B x D]
// (-Inf outside the support): the terms LogProb sums.
func (d Binomial) LogProbElements(value *ad.Tensor) *ad.Tensor {
	rows, cols := shapeOf(value, d.TotalCount, d.prob())
	nv, kv := viewOf(d.TotalCount), viewOf(value)
	inSupport := func(i, j int) bool {
		k := kv.at(i, j)
		return isNonNegativeInteger(k) && k <= nv.at(i, j)
	}
	n := d.TotalCount
	return maskedLogProbAt(value, rows, cols, inSupport, 0, func(k *ad.Tensor) *ad.Tensor {
		one := k.Tape().Scalar(1)
		rest := ad.Sub(n, k)
		lp := ad.Sub(ad.Lgamma(ad.Add(n, one)), ad.Add(ad.Lgamma(ad.Add(k, one)), ad.Lgamma(ad.Add(rest, one))))
		if d.Logits != nil {
			return ad.Add(lp, ad.Sub(ad.Mul(k, d.Logits), ad.Mul(n, ad.Softplus(d.Logits))))
		}
		return ad.Add(lp, ad.Add(xlogy(k, d.Probs), xlogy(rest, ad.Sub(one, d.Probs))))
	})
}

func (d Binomial) probs() *ad.Tensor {
	if d.Logits != nil {
		return ad.Sigmoid(d.Logits)
	}
	return d.Probs
}

// Mean returns n·p, [B x D].
func (d Binomial) Mean() *ad.Tensor {
	rows, cols := d.Shape()
	return expand(ad.Mul(d.TotalCount, d.probs()), rows, cols)
}

// Variance returns n·p·(1-p), [B x D].
func (d Binomial) Variance() *ad.Tensor {
	p := d.probs()
	rows, cols := d.Shape()
	return expand(ad.Mul(ad.Mul(d.TotalCount, p), ad.Sub(p.Tape().Scalar(1), p)), rows, cols)
}

// Validate reports a nil total count, neither or both of logits and probs,
// shapes that do not broadcast, a total count that is not a non-negative
// integer, logits that are not finite and probabilities outside [0, 1].
func (d Binomial) Validate() error {
	if err := (Bernoulli{Logits: d.Logits, Probs: d.Probs}).Validate(); err != nil {
		return renameErr(err, "Binomial")
	}
	if _, _, err := checkParams("Binomial", param{"total_count", d.TotalCount}, param{"probs", d.prob()}); err != nil {
		return err
	}
	return checkElems("Binomial", "total_count", d.TotalCount, ruleCount, isNonNegativeInteger)
}

// ValidateValue reports a value of the wrong shape or not an integer in
// [0, TotalCount].
func (d Binomial) ValidateValue(value *ad.Tensor) error {
	rows, cols := d.Shape()
	if err := checkValueShape("Binomial", value, d.TotalCount, rows, cols, false); err != nil {
		return err
	}
	return checkElemsAt("Binomial", value, "must be an integer in [0, total_count]", func(i, j int, k float64) bool {
		return isNonNegativeInteger(k) && k <= viewOf(d.TotalCount).at(i, j)
	})
}

// Support returns the integers in [0, TotalCount], elementwise.
func (d Binomial) Support() Constraint {
	return predicate{"integers in [0, total_count]", func(value *ad.Tensor, i int) bool {
		n := viewOf(d.TotalCount)
		cols := value.Cols()
		for j, k := range value.Data()[i*cols : (i+1)*cols] {
			if !isNonNegativeInteger(k) || k > n.at(i, j) {
				return false
			}
		}
		return true
	}}
}

// ParamConstraints returns total_count: [NonNegativeInteger], logits:
// [Real], probs: [UnitInterval].
func (Binomial) ParamConstraints() map[string]Constraint {
	return params{"total_count": NonNegativeInteger, "logits": Real, "probs": UnitInterval}
}

func sampleBinomial(rng *rand.Rand, n, p float64) float64 {
	if p > 0.5 {
		return n - sampleBinomial(rng, n, 1-p)
	}
	if n*p < 10 {
		// Inversion: P(0) = (1-p)^n >= e^-20 here.
		q := 1 - p
		pk := math.Pow(q, n)
		u := rng.Float64()
		k := 0.0
		for u > pk && k < n {
			u -= pk
			pk *= (n - k) / (k + 1) * p / q
			k++
		}
		return k
	}
	// BTRS: W. Hörmann, "The generation of binomial random variates", 1993.
	q := 1 - p
	spq := math.Sqrt(n * p * q)
	b := 1.15 + 2.53*spq
	a := -0.0873 + 0.0248*b + 0.01*p
	c := n*p + 0.5
	vr := 0.92 - 4.2/b
	alpha := (2.83 + 5.1/b) * spq
	lpq := math.Log(p / q)
	m := math.Floor((n + 1) * p)
	lm, _ := math.Lgamma(m + 1)
	lnm, _ := math.Lgamma(n - m + 1)
	h := lm + lnm
	for {
		u := rng.Float64() - 0.5
		v := rng.Float64()
		us := 0.5 - math.Abs(u)
		k := math.Floor((2*a/us+b)*u + c)
		if k < 0 || k > n {
			continue
		}
		if us >= 0.07 && v <= vr {
			return k
		}
		lk, _ := math.Lgamma(k + 1)
		lnk, _ := math.Lgamma(n - k + 1)
		if math.Log(v*alpha/(a/(us*us)+b)) <= h-lk-lnk+(k-m)*lpq {
			return k
		}
	}
}
