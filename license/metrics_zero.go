package license

import "orchard/model"

// Every health's series exists from the start, at zero (dashboards and alerts use increase()).
func init() {
	for _, h := range []model.TokenHealth{model.TokenHealthActive, model.TokenHealthExpiringSoon, model.TokenHealthExpired,
		model.TokenHealthRevoked, model.TokenHealthInvalid, model.TokenHealthClaimedElsewhere} {
		healthChanges.WithLabelValues(string(h))
	}
}
