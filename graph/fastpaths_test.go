package graph

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/google/go-cmp/cmp"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// An object's fields are written in the order selected, each alias once (the first value).
func TestFieldSetWritesEachAliasOnce(t *testing.T) {
	t.Parallel()
	field := func(alias string) graphql.CollectedField {
		return graphql.CollectedField{Field: &ast.Field{Alias: alias, Name: alias}}
	}
	tests := []struct {
		name    string
		aliases []string
		want    string
	}{
		{name: "none", want: `{}`},
		{name: "in order", aliases: []string{"id", "b", "a"}, want: `{"id":"id0","b":"b1","a":"a2"}`},
		{name: "a repeated alias", aliases: []string{"id", "id", "x"}, want: `{"id":"id0","x":"x2"}`},
		{name: "repeated first and last", aliases: []string{"a", "b", "a"}, want: `{"a":"a0","b":"b1"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := fieldSet{}
			for i, a := range tt.aliases {
				s.fields = append(s.fields, field(a))
				s.values = append(s.values, graphql.MarshalString(fmt.Sprint(a, i)))
			}
			var b bytes.Buffer
			s.MarshalGQL(&b)
			if diff := cmp.Diff(tt.want, b.String()); diff != "" {
				t.Errorf("object mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// A list's items are marshalled in order, each with its index in its field context; an item
// that panics is a null and an error at its path, and the others are unaffected.
func TestMarshalInOrder(t *testing.T) {
	t.Parallel()
	ctx := graphql.WithResponseContext(context.Background(), graphql.DefaultErrorPresenter,
		func(ctx context.Context, err any) error { return errors.New(fmt.Sprint("recovered: ", err)) })
	ctx = graphql.WithFieldContext(ctx, &graphql.FieldContext{Field: graphql.CollectedField{Field: &ast.Field{Alias: "items"}}})
	var order []int
	got := marshalInOrder(ctx, 3, func(ctx context.Context, i int) graphql.Marshaler {
		order = append(order, i)
		if idx := *graphql.GetFieldContext(ctx).Index; idx != i {
			t.Errorf("item %d has index %d in its field context", i, idx)
		}
		if i == 1 {
			panic("boom")
		}
		return graphql.MarshalInt(i)
	})
	if diff := cmp.Diff([]int{0, 1, 2}, order); diff != "" {
		t.Errorf("order mismatch (-want +got):\n%s", diff)
	}
	var b bytes.Buffer
	got.MarshalGQL(&b)
	if diff := cmp.Diff(`[0,null,2]`, b.String()); diff != "" {
		t.Errorf("list mismatch (-want +got):\n%s", diff)
	}
	errs := graphql.GetErrors(ctx)
	want := gqlerror.List{{Message: "recovered: boom", Path: ast.Path{ast.PathName("items"), ast.PathIndex(1)}}}
	if diff := cmp.Diff(want, errs, cmp.Comparer(func(a, b *gqlerror.Error) bool {
		return a.Message == b.Message && a.Path.String() == b.Path.String()
	})); diff != "" {
		t.Errorf("errors mismatch (-want +got):\n%s", diff)
	}
}
