// Package resolvers implements the GraphQL schema of package graph. Resolvers are thin: reads
// go to package db (lists directly, relations through the per-request dataloaders of package
// loaders), writes go to the domain service of package license. The package also holds what
// surrounds them: API-key authentication and the role directive, global ids and cursors, the
// error presenter, limits, metrics and the HTTP handler.
package resolvers

import (
	"log/slog"
	"time"

	"orchard/db"
	"orchard/license"
)

// Resolver is the root of the resolvers, holding their dependencies.
type Resolver struct {
	DB      *db.DB
	License *license.Service
	Log     *slog.Logger
	Auth    *Authenticator
	Now     func() time.Time

	feed *feedHub // the licenseEvents subscriptions' (feedhub.go)
}
