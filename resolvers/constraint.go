package resolvers

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"orchard/graph"
	"orchard/model"
)

// Input bounds (issue 11, classes 4 and 5). Every String, ID and list input field and argument
// of the schema carries @constraint(maxLength:, maxItems:) (graph/schema.graphqls declares it;
// TestEveryInputIsBounded fails when a new one forgets). The directive is the one place the
// limits are declared; this file is the one piece of code that enforces them:
//
//   - inputConstraints checks a whole operation at once, after gqlgen has parsed and validated
//     it and coerced its variables and before any resolver runs, so that an oversize input is
//     refused before it costs a statement (80,000 statuses used to reach SQLite as 80,000
//     variables) and an operation with two mutations does not run the first when the second's
//     input is refused. gqlgen's generated per-field directive hooks are switched off for it
//     (gqlgen.yml: skip_runtime), so that the nested fields of a page, whose arguments are
//     parsed once per parent object, pay nothing.
//   - The walk costs time linear in the size of the document and its variables: a fragment is
//     checked once however often it is spread (its arguments depend on the operation's
//     variables only), literal values are walked in place and variables as decoded.
//   - A refusal is a top-level error with extensions.code INVALID_INPUT, extensions.field the
//     path of the input at fault, and a message naming the field, the argument and its limit.
//   - Strings are measured in characters (Unicode code points), as model.Truncate and MySQL's
//     VARCHAR count them; a string of at most n bytes is accepted without counting.
//   - describeLimits writes each limit into its element's description (GraphiQL's manual), so
//     that the documentation cannot disagree with the check.

// inputLimit is one element's @constraint: 0 means no bound of that kind.
type inputLimit struct {
	maxLength int
	maxItems  int
}

// constraintOf reads an element's @constraint directive.
func constraintOf(dirs ast.DirectiveList) (inputLimit, bool) {
	d := dirs.ForName("constraint")
	if d == nil {
		return inputLimit{}, false
	}
	var l inputLimit
	for _, a := range d.Arguments {
		n, err := strconv.Atoi(a.Value.Raw)
		if err != nil || n < 0 {
			continue // TestEveryInputIsBounded refuses such a declaration
		}
		switch a.Name {
		case "maxLength":
			l.maxLength = n
		case "maxItems":
			l.maxItems = n
		}
	}
	return l, true
}

// inputConstraints is the handler extension that enforces @constraint (srv.Use in NewHandler).
type inputConstraints struct {
	schema *ast.Schema
	// args and fields are the limits of the schema's arguments and input fields, read once.
	args   map[*ast.ArgumentDefinition]inputLimit
	fields map[*ast.FieldDefinition]inputLimit
}

var (
	_ graphql.HandlerExtension        = (*inputConstraints)(nil)
	_ graphql.OperationContextMutator = (*inputConstraints)(nil)
)

// newInputConstraints reads the limits of schema.
func newInputConstraints(schema *ast.Schema) *inputConstraints {
	c := &inputConstraints{schema: schema, args: map[*ast.ArgumentDefinition]inputLimit{}, fields: map[*ast.FieldDefinition]inputLimit{}}
	for _, def := range schema.Types {
		for _, f := range def.Fields {
			if def.Kind == ast.InputObject {
				if l, ok := constraintOf(f.Directives); ok {
					c.fields[f] = l
				}
				continue
			}
			for _, a := range f.Arguments {
				if l, ok := constraintOf(a.Directives); ok {
					c.args[a] = l
				}
			}
		}
	}
	return c
}

func (*inputConstraints) ExtensionName() string                   { return "InputConstraints" }
func (*inputConstraints) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationContext checks every argument of the operation, its fragments included.
func (c *inputConstraints) MutateOperationContext(_ context.Context, rc *graphql.OperationContext) *gqlerror.Error {
	if rc.Operation == nil {
		return nil
	}
	w := constraintWalk{c: c, vars: rc.Variables}
	return w.selections(rc.Operation.SelectionSet)
}

// constraintWalk is the state of one operation's check.
type constraintWalk struct {
	c    *inputConstraints
	vars map[string]any
	// seen are the fragments checked already.
	seen map[string]bool
}

// selections checks the fields of set and of their selections; the error's path is built on
// the way back, so that checking costs no path.
func (w *constraintWalk) selections(set ast.SelectionSet) *gqlerror.Error {
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			err := w.field(s)
			if err == nil {
				err = w.selections(s.SelectionSet)
			}
			if err != nil {
				err.Path = append(ast.Path{ast.PathName(s.Alias)}, err.Path...)
				return err
			}
		case *ast.InlineFragment:
			if err := w.selections(s.SelectionSet); err != nil {
				return err
			}
		case *ast.FragmentSpread:
			if w.seen[s.Name] || s.Definition == nil {
				continue
			}
			if w.seen == nil {
				w.seen = map[string]bool{}
			}
			w.seen[s.Name] = true
			if err := w.selections(s.Definition.SelectionSet); err != nil {
				return err
			}
		}
	}
	return nil
}

// field checks the arguments given to one field (absent ones take the schema's defaults,
// which are trusted).
func (w *constraintWalk) field(f *ast.Field) *gqlerror.Error {
	if f.Definition == nil || len(f.Arguments) == 0 {
		return nil
	}
	for _, a := range f.Arguments {
		def := f.Definition.Arguments.ForName(a.Name)
		if def == nil {
			continue
		}
		if v := w.literal(a.Value, def.Type, w.c.args[def]); v != nil {
			return w.refuse(f, v.under(a.Name))
		}
	}
	return nil
}

// violation is a value over its limit. at is the path of the value inside its argument,
// innermost first: each level adds its segment on the way back, so that a value within its
// limits costs no path at all.
type violation struct {
	at         []string
	got, limit int
	what       string // "characters" or "items"
}

func (v *violation) under(segment string) *violation {
	v.at = append(v.at, segment)
	return v
}

// path is the value's path, outermost first: ["input", "users", "3", "name"].
func (v *violation) path() []string {
	out := make([]string, len(v.at))
	for i, s := range v.at {
		out[len(out)-1-i] = s
	}
	return out
}

// String writes the path as GraphQL users read it: input.users[3].name.
func (v *violation) String() string {
	var b strings.Builder
	for i, s := range v.path() {
		switch _, err := strconv.Atoi(s); {
		case err == nil && i > 0:
			b.WriteString("[" + s + "]")
		case i > 0:
			b.WriteString("." + s)
		default:
			b.WriteString(s)
		}
	}
	return b.String()
}

func (w *constraintWalk) refuse(f *ast.Field, v *violation) *gqlerror.Error {
	return &gqlerror.Error{
		Message: fmt.Sprintf("%s(%s): at most %s %s are allowed, got %s",
			f.Name, v, thousands(v.limit), v.what, thousands(v.got)),
		Extensions: map[string]any{"code": string(model.CodeInvalidInput), "field": v.path()},
	}
}

// literal checks a value as written in the document; a variable is checked as decoded.
func (w *constraintWalk) literal(v *ast.Value, typ *ast.Type, l inputLimit) *violation {
	if v == nil || typ == nil {
		return nil
	}
	switch v.Kind {
	case ast.Variable:
		if val, ok := w.vars[v.Raw]; ok {
			return w.decoded(val, typ, l)
		}
		if d := v.VariableDefinition; d != nil && d.DefaultValue != nil {
			return w.literal(d.DefaultValue, typ, l) // the default written in the document
		}
		return nil
	case ast.NullValue:
		return nil
	}
	if typ.Elem != nil {
		if v.Kind != ast.ListValue { // a single value for a list: one element (input coercion)
			return w.literal(v, typ.Elem, inputLimit{maxLength: l.maxLength})
		}
		if l.maxItems > 0 && len(v.Children) > l.maxItems {
			return &violation{got: len(v.Children), limit: l.maxItems, what: "items"}
		}
		el := inputLimit{maxLength: l.maxLength}
		for i, c := range v.Children {
			if bad := w.literal(c.Value, typ.Elem, el); bad != nil {
				return bad.under(strconv.Itoa(i))
			}
		}
		return nil
	}
	switch v.Kind {
	case ast.StringValue, ast.BlockValue:
		return checkLength(v.Raw, l)
	case ast.ObjectValue:
		def := w.c.schema.Types[typ.NamedType]
		if def == nil || def.Kind != ast.InputObject {
			return nil
		}
		for _, c := range v.Children {
			fd := def.Fields.ForName(c.Name)
			if fd == nil {
				continue
			}
			if bad := w.literal(c.Value, fd.Type, w.c.fields[fd]); bad != nil {
				return bad.under(c.Name)
			}
		}
	}
	return nil
}

// decoded checks a variable's value as gqlgen decoded and coerced it (JSON: strings, []any,
// map[string]any).
func (w *constraintWalk) decoded(val any, typ *ast.Type, l inputLimit) *violation {
	if val == nil || typ == nil {
		return nil
	}
	if typ.Elem != nil {
		list, ok := val.([]any)
		if !ok { // a single value for a list: one element (input coercion)
			return w.decoded(val, typ.Elem, inputLimit{maxLength: l.maxLength})
		}
		if l.maxItems > 0 && len(list) > l.maxItems {
			return &violation{got: len(list), limit: l.maxItems, what: "items"}
		}
		el := inputLimit{maxLength: l.maxLength}
		for i, e := range list {
			if bad := w.decoded(e, typ.Elem, el); bad != nil {
				return bad.under(strconv.Itoa(i))
			}
		}
		return nil
	}
	switch v := val.(type) {
	case string:
		return checkLength(v, l)
	case map[string]any:
		def := w.c.schema.Types[typ.NamedType]
		if def == nil || def.Kind != ast.InputObject {
			return nil
		}
		for name, fv := range v {
			fd := def.Fields.ForName(name)
			if fd == nil {
				continue
			}
			if bad := w.decoded(fv, fd.Type, w.c.fields[fd]); bad != nil {
				return bad.under(name)
			}
		}
	}
	return nil
}

// checkLength bounds a string's characters; n bytes hold at most n characters, so a short
// string is not counted.
func checkLength(s string, l inputLimit) *violation {
	if l.maxLength == 0 || len(s) <= l.maxLength {
		return nil
	}
	if n := utf8.RuneCountInString(s); n > l.maxLength {
		return &violation{got: n, limit: l.maxLength, what: "characters"}
	}
	return nil
}

// thousands formats n as the descriptions write numbers: 10,000.
func thousands(n int) string {
	s := strconv.Itoa(n)
	if n < 0 {
		return s
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// limitText is the sentence describeLimits appends for l, leaving out what the description
// says already (e.g. "at most 1,000.").
func limitText(desc string, l inputLimit, list bool) string {
	var parts []string
	if l.maxItems > 0 && !strings.Contains(desc, thousands(l.maxItems)) {
		parts = append(parts, fmt.Sprintf("At most %s items.", thousands(l.maxItems)))
	}
	if l.maxLength > 0 && !strings.Contains(desc, thousands(l.maxLength)+" characters") {
		if list {
			parts = append(parts, fmt.Sprintf("Each at most %s characters.", thousands(l.maxLength)))
		} else {
			parts = append(parts, fmt.Sprintf("At most %s characters.", thousands(l.maxLength)))
		}
	}
	return strings.Join(parts, " ")
}

// describeLimits appends each @constraint to its element's description. It runs once, at
// start-up (init), on the schema gqlgen parsed; descriptions are only read afterwards.
func describeLimits(schema *ast.Schema) {
	add := func(desc *string, dirs ast.DirectiveList, typ *ast.Type) {
		l, ok := constraintOf(dirs)
		if !ok {
			return
		}
		if t := limitText(*desc, l, typ.Elem != nil); t != "" {
			*desc = strings.TrimSpace(*desc + " " + t)
		}
	}
	for _, def := range schema.Types {
		if def.BuiltIn {
			continue
		}
		for _, f := range def.Fields {
			if def.Kind == ast.InputObject {
				add(&f.Description, f.Directives, f.Type)
				continue
			}
			for _, a := range f.Arguments {
				add(&a.Description, a.Directives, a.Type)
			}
		}
	}
}

func init() { describeLimits(graph.NewExecutableSchema(graph.Config{}).Schema()) }
