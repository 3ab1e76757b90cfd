package main

// gqlgen writes graph/generated.go, graph/models_gen.go and the resolver skeletons of new
// fields in resolvers/. Run `go generate ./...` after changing a .graphqls file. It runs
// through graph/generate, which adds one plugin to gqlgen (see there).
//go:generate go run ./graph/generate
