package graph

import (
	"context"
	"io"

	"github.com/99designs/gqlgen/graphql"
)

// The pieces of the executor that graph/generate puts in place of gqlgen's on the read path
// (what each replaces and why: graph/generate/fastpaths.go, "The read fast paths").

// marshalInOrder marshals the items of a list one after the other, each with the field
// context gqlgen gives a list item (its index, for paths), and turns an item's panic into an
// error at the item's path and a null, as gqlgen's concurrent marshaller does.
func marshalInOrder(ctx context.Context, n int, item func(ctx context.Context, i int) graphql.Marshaler) graphql.Array {
	ret := make(graphql.Array, n)
	for i := range n {
		ret[i] = marshalItem(ctx, i, item)
	}
	return ret
}

func marshalItem(ctx context.Context, i int, item func(ctx context.Context, i int) graphql.Marshaler) (ret graphql.Marshaler) {
	ctx = graphql.WithFieldContext(ctx, &graphql.FieldContext{Index: &i})
	defer func() {
		if r := recover(); r != nil {
			graphql.AddError(ctx, graphql.Recover(ctx, r))
			ret = graphql.Null
		}
	}()
	return item(ctx, i)
}

// objectFields holds the values of the fields of an object that is not a root while they
// resolve: in order, in the object's goroutine, so that there is nothing to dispatch.
type objectFields struct {
	Values   []graphql.Marshaler
	Invalids uint32 // the non-null fields that resolved to null
}

func newObjectFields(fields []graphql.CollectedField) objectFields {
	return objectFields{Values: make([]graphql.Marshaler, len(fields))}
}

// Dispatch does nothing: every field has resolved when it is called.
func (objectFields) Dispatch(context.Context) {}

// fieldSet writes an object's fields, in the order the query selected them, each alias once
// (gqlgen's FieldSet keeps a map of the aliases it wrote, per object; an object has a few
// fields, and looking back over them costs less than the map).
type fieldSet struct {
	fields []graphql.CollectedField
	values []graphql.Marshaler
}

var (
	openBrace  = []byte{'{'}
	closeBrace = []byte{'}'}
	comma      = []byte{','}
	quote      = []byte{'"'}
	quoteColon = []byte{'"', ':'}
)

// MarshalGQL writes the object as JSON. An alias is a GraphQL name ([_A-Za-z][_0-9A-Za-z]*),
// so it is written between quotes as it is.
func (s fieldSet) MarshalGQL(w io.Writer) {
	w.Write(openBrace)
	first := true
	for i := range s.fields {
		alias := s.fields[i].Alias
		if written(s.fields[:i], alias) {
			continue
		}
		if !first {
			w.Write(comma)
		}
		first = false
		w.Write(quote)
		io.WriteString(w, alias)
		w.Write(quoteColon)
		s.values[i].MarshalGQL(w)
	}
	w.Write(closeBrace)
}

// written says whether one of the fields before has the alias.
func written(before []graphql.CollectedField, alias string) bool {
	for i := range before {
		if before[i].Alias == alias {
			return true
		}
	}
	return false
}
