package license

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var healthChanges = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "orchard_account_health_changes_total",
	Help: "Changes of an account's token health, by the new health.",
}, []string{"health"})
