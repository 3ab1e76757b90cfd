package main

// gqlgen writes graph/generated.go, graph/models_gen.go and the resolver skeletons of new
// fields in resolvers/. Run `go generate ./...` after changing a .graphqls file.
//go:generate go tool gqlgen generate
