// Package graph holds Orchard's GraphQL schema (one .graphqls file per domain), the Relay
// connection types the schema binds to, and gqlgen's generated executor. Resolvers live in
// package resolvers.
package graph

// Regenerate with `go generate ./...` from the repository root (see generate.go there).
