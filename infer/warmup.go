package infer

import (
	"strings"

	"github.com/backpropq/backpropq/nn"
)

// stepParams returns the parameters the current step trains: all of them,
// or during the warm-up ([SVI].Warmup) the estimators' own only.
func (s *SVI) stepParams() []*nn.Param {
	params := s.allParams()
	if s.step >= s.Warmup {
		return params
	}
	var own []*nn.Param
	for _, p := range params {
		if strings.HasPrefix(p.Name, estimatorParamPrefix) {
			own = append(own, p)
		}
	}
	return own
}
