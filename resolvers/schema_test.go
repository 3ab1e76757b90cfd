package resolvers_test

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"

	"orchard/graph"
)

// TestSchemaIsDescribed: every type, field, argument, input field and enum value of the schema
// has a description (analysts explore the API in GraphiQL; the descriptions are its manual).
func TestSchemaIsDescribed(t *testing.T) {
	schema := graph.NewExecutableSchema(graph.Config{}).Schema()
	var missing []string
	for name, def := range schema.Types {
		if strings.HasPrefix(name, "__") || def.BuiltIn {
			continue
		}
		if def.Description == "" && name != "Query" && name != "Mutation" && name != "Subscription" {
			missing = append(missing, "type "+name)
		}
		for _, f := range def.Fields {
			if strings.HasPrefix(f.Name, "__") {
				continue
			}
			if f.Description == "" {
				missing = append(missing, name+"."+f.Name)
			}
			for _, a := range f.Arguments {
				if a.Description == "" {
					missing = append(missing, name+"."+f.Name+"("+a.Name+")")
				}
			}
		}
		for _, v := range def.EnumValues {
			if v.Description == "" {
				missing = append(missing, name+"."+v.Name)
			}
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d schema elements lack a description:\n%s", len(missing), strings.Join(missing, "\n"))
	}
}

// TestEveryInputIsBounded: every String and ID input field and argument has
// @constraint(maxLength:), every list one @constraint(maxItems:) (issue 11: an unbounded
// input is a way to fill the database or the server's memory), the limits are positive and
// fit their type, and each element's description states its limits (resolvers/constraint.go
// writes them there). A new field that forgets fails here, named.
func TestEveryInputIsBounded(t *testing.T) {
	schema := graph.NewExecutableSchema(graph.Config{}).Schema()
	var bad []string
	check := func(where, desc string, typ *ast.Type, dirs ast.DirectiveList) {
		list := typ.Elem != nil
		inner := typ
		for inner.Elem != nil {
			inner = inner.Elem
		}
		if inner != typ.Elem && list {
			bad = append(bad, where+": a list of lists; @constraint bounds one level")
		}
		str := inner.NamedType == "String" || inner.NamedType == "ID"
		if !list && !str {
			if dirs.ForName("constraint") != nil {
				bad = append(bad, where+": @constraint on a "+typ.String())
			}
			return
		}
		d := dirs.ForName("constraint")
		if d == nil {
			bad = append(bad, where+" ("+typ.String()+"): no @constraint")
			return
		}
		limit := func(name string) int {
			a := d.Arguments.ForName(name)
			if a == nil {
				return 0
			}
			n, err := strconv.Atoi(a.Value.Raw)
			if err != nil || n <= 0 {
				bad = append(bad, fmt.Sprintf("%s: @constraint(%s: %s) is not a positive integer", where, name, a.Value.Raw))
			}
			return n
		}
		maxLength, maxItems := limit("maxLength"), limit("maxItems")
		switch {
		case str && maxLength == 0:
			bad = append(bad, where+" ("+typ.String()+"): no maxLength")
		case !str && maxLength != 0:
			bad = append(bad, where+" ("+typ.String()+"): maxLength on a list of "+inner.NamedType)
		}
		switch {
		case list && maxItems == 0:
			bad = append(bad, where+" ("+typ.String()+"): no maxItems")
		case !list && maxItems != 0:
			bad = append(bad, where+" ("+typ.String()+"): maxItems on a "+typ.String())
		}
		for _, n := range []int{maxLength, maxItems} {
			if n > 0 && !strings.Contains(desc, thousands(n)) {
				bad = append(bad, fmt.Sprintf("%s: the description %q does not state the limit %s", where, desc, thousands(n)))
			}
		}
	}
	for name, def := range schema.Types {
		if def.BuiltIn || strings.HasPrefix(name, "__") {
			continue
		}
		for _, f := range def.Fields {
			if strings.HasPrefix(f.Name, "__") {
				continue // introspection's own (__type(name:)), answered from the schema in memory
			}
			if def.Kind == ast.InputObject {
				check(name+"."+f.Name, f.Description, f.Type, f.Directives)
				continue
			}
			for _, a := range f.Arguments {
				check(name+"."+f.Name+"("+a.Name+")", a.Description, a.Type, a.Directives)
			}
		}
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		t.Errorf("%d inputs are not bounded (declare @constraint in graph/*.graphqls):\n%s", len(bad), strings.Join(bad, "\n"))
	}
}

// thousands writes n as the descriptions do: 10,000.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
