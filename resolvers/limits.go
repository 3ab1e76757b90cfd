package resolvers

import (
	"context"
	"errors"
	"math"
	"reflect"
	"strings"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator/core"
	"github.com/vektah/gqlparser/v2/validator/rules"

	"orchard/graph"
	"orchard/model"
)

// Query limits. A connection multiplies the cost of what is selected under it by its page
// size, so a query's complexity is roughly the number of objects it may return; the depth
// limit stops deeply nested queries that complexity alone would price too low.

// complexityRoot prices every connection field as (child + 1) × first (default page size when
// first is absent) and nodes(ids) as child × len(ids). It fills every field of the generated
// ComplexityRoot whose first argument is `first *int`, so connections added to the schema
// later are priced without anyone remembering to.
func complexityRoot() graph.ComplexityRoot {
	var root graph.ComplexityRoot
	intPtr := reflect.TypeOf((*int)(nil))
	strSlice := reflect.TypeOf([]string(nil))
	rv := reflect.ValueOf(&root).Elem()
	for i := 0; i < rv.NumField(); i++ {
		obj := rv.Field(i)
		for j := 0; j < obj.NumField(); j++ {
			f := obj.Field(j)
			ft := f.Type()
			if ft.Kind() != reflect.Func || ft.NumIn() < 2 {
				continue
			}
			switch ft.In(1) {
			case intPtr:
				f.Set(reflect.MakeFunc(ft, func(args []reflect.Value) []reflect.Value {
					child := int(args[0].Int())
					n := defaultPageSize
					if p := args[1].Interface().(*int); p != nil && *p > 0 {
						n = *p
					}
					return []reflect.Value{reflect.ValueOf((child + 1) * n)}
				}))
			case strSlice:
				f.Set(reflect.MakeFunc(ft, func(args []reflect.Value) []reflect.Value {
					child := int(args[0].Int())
					n := len(args[1].Interface().([]string))
					return []reflect.Value{reflect.ValueOf((child + 1) * max(n, 1))}
				}))
			}
		}
	}
	return root
}

// Codes of the limits' own errors.
const (
	// codeSelectionLimitExceeded: the document selects too much before it is even validated
	// (see documentLimits).
	codeSelectionLimitExceeded model.Code = "SELECTION_LIMIT_EXCEEDED"
	// codeIntrospectionDisabled: __schema or __type on a server whose introspection is off.
	codeIntrospectionDisabled model.Code = "INTROSPECTION_DISABLED"
	// codeOperationTimeout: the operation ran out of its server-side time budget (or its
	// client went away while it was checked).
	codeOperationTimeout model.Code = "OPERATION_TIMEOUT"
)

// Work the checks may do: every check below costs time linear in the document's size or
// bounded by its limit — operationLimits prices each fragment once however often it is spread
// (memoized); documentLimits walks the expansion, as the executor would, and gives up once it
// passes its limit — and each stops when the request's context ends (looked at every
// ctxCheckEvery units of work). A unit of work is one selection (field, fragment spread or
// inline fragment) or argument visited (the sizes of a field's directives and arguments are
// read, not visited, before validation); Config.CheckWork, when set, is told the
// units each check spent (the cost test holds hostile documents to a fixed budget of them).
const ctxCheckEvery = 256

// work counts a check's units and watches the request's context.
type work struct {
	ctx   context.Context
	units int
}

// step counts one unit; false when the context has ended.
func (w *work) step() bool {
	w.units++
	return w.units%ctxCheckEvery != 0 || w.ctx.Err() == nil
}

func errTimedOut(ctx context.Context) *gqlerror.Error {
	return codedError(model.Errorf(codeOperationTimeout, "the operation ran out of time (%s) before it was checked", context.Cause(ctx)))
}

// codedError is a *model.Error as a gqlgen request error (no path: the operation never ran).
func codedError(e *model.Error) *gqlerror.Error {
	return &gqlerror.Error{Message: e.Message, Extensions: map[string]any{"code": string(e.Code)}}
}

// documentLimits bounds a document before gqlgen validates it. gqlparser's validation is not
// linear everywhere: OverlappingFieldsCanBeMerged compares every pair of fields that share a
// response name in a selection set (fragments and same-named fields merged in, as the
// executor merges them), so 2,000 repetitions of one field cost seconds, 14,000 of them tens
// of seconds, all in a document under the token limit. Before validation the document is
// parsed (linear, bounded by the token limit) and measured as the executor would see it:
//
//   - Expanded is the number of fields, directives and arguments of the operation with every
//     fragment spread replaced by its fragment (what the executor would walk). It refuses
//     fragment fan-out (fragments that spread others ten times per level) as well.
//   - Width is the number of fields of one merged selection set: a set with its inline
//     fragments and spread fragments merged in, and the sub-selections of the fields that
//     share a response name merged into one. The pairs the overlap rule compares are then at
//     most Width × Expanded.
//
// The measure walks the expanded document and gives up as soon as it passes Expanded, so it
// costs at most about Expanded units of work whatever the document (a cycle of fragments,
// which validation would refuse, included). A document found in the query cache passed
// before and is not measured again.
type documentLimits struct {
	expanded, width, tokens int
	cache                   graphql.Cache[*ast.QueryDocument]
	observe                 func(units int)
}

var (
	_ graphql.HandlerExtension          = documentLimits{}
	_ graphql.OperationParameterMutator = documentLimits{}
)

func (documentLimits) ExtensionName() string                   { return "DocumentLimits" }
func (documentLimits) Validate(graphql.ExecutableSchema) error { return nil }

func (l documentLimits) MutateOperationParameters(ctx context.Context, p *graphql.RawParams) *gqlerror.Error {
	if p.Query == "" {
		return nil
	}
	if _, ok := l.cache.Get(ctx, p.Query); ok {
		return nil
	}
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: p.Query}, l.tokens)
	if err != nil {
		return nil // gqlgen parses it again and reports the error, coded
	}
	m := &docMeasure{work: work{ctx: ctx}, doc: doc, limits: l}
	for _, op := range doc.Operations {
		if m.merged([]ast.SelectionSet{op.SelectionSet}); m.err != nil {
			break
		}
	}
	if l.observe != nil {
		l.observe(m.units)
	}
	return m.err
}

type docMeasure struct {
	work
	doc      *ast.QueryDocument
	limits   documentLimits
	expanded int
	err      *gqlerror.Error
}

func (m *docMeasure) fail(format string, args ...any) {
	if m.err == nil {
		m.err = codedError(model.Errorf(codeSelectionLimitExceeded, format, args...))
	}
}

// merged measures the selection sets that merge into one (the sub-selections of same-named
// fields), then, by response name, the sets their fields merge into.
func (m *docMeasure) merged(sets []ast.SelectionSet) {
	subs := map[string][]ast.SelectionSet{}
	var names []string
	width := 0
	var collect func(set ast.SelectionSet)
	collect = func(set ast.SelectionSet) {
		for _, sel := range set {
			if m.err != nil {
				return
			}
			if !m.step() {
				m.err = errTimedOut(m.ctx)
				return
			}
			if m.units > 2*m.limits.expanded { // spreads of spreads, or a cycle
				m.fail("the operation selects more than %d fields, directives and arguments once its fragments are expanded", m.limits.expanded)
				return
			}
			switch s := sel.(type) {
			case *ast.Field:
				m.expanded = satAdd(m.expanded, 1+len(s.Directives)+len(s.Arguments))
				width++
				switch {
				case m.expanded > m.limits.expanded:
					m.fail("the operation selects more than %d fields, directives and arguments once its fragments are expanded", m.limits.expanded)
				case width > m.limits.width:
					m.fail("a selection set holds more than %d fields (its fragments and same-named fields merged in)", m.limits.width)
				case len(s.SelectionSet) > 0:
					if _, ok := subs[s.Alias]; !ok {
						names = append(names, s.Alias)
					}
					subs[s.Alias] = append(subs[s.Alias], s.SelectionSet)
				}
			case *ast.InlineFragment:
				m.expanded = satAdd(m.expanded, len(s.Directives))
				collect(s.SelectionSet)
			case *ast.FragmentSpread:
				m.expanded = satAdd(m.expanded, len(s.Directives))
				if def := m.doc.Fragments.ForName(s.Name); def != nil {
					collect(def.SelectionSet)
				}
			}
		}
	}
	for _, set := range sets {
		collect(set)
	}
	for _, name := range names {
		if m.err != nil {
			return
		}
		m.merged(subs[name])
	}
}

// satAdd adds two non-negative sizes, saturating instead of overflowing.
func satAdd(a, b int) int {
	if c := a + b; c >= a {
		return c
	}
	return math.MaxInt
}

// operationLimits checks a validated operation, in one walk: its depth (Depth; introspection
// fields, which GraphiQL nests deeply, do not count), its complexity (Complexity, priced as
// gqlgen's complexity package prices it, with the schema's complexity functions, see
// complexityRoot) and, with introspection off, that it selects neither __schema nor __type
// (gqlgen would answer them with an uncoded internal error). Each fragment is walked once:
// its depth below the spread and its complexity do not depend on where it is spread.
type operationLimits struct {
	depth, complexity int
	introspection     bool
	observe           func(units int)
	es                graphql.ExecutableSchema
}

var (
	_ graphql.HandlerExtension        = &operationLimits{}
	_ graphql.OperationContextMutator = &operationLimits{}
)

func (*operationLimits) ExtensionName() string { return "OperationLimits" }
func (l *operationLimits) Validate(es graphql.ExecutableSchema) error {
	l.es = es
	return nil
}

func (l *operationLimits) MutateOperationContext(ctx context.Context, rc *graphql.OperationContext) *gqlerror.Error {
	if rc.Operation == nil {
		return nil
	}
	w := &opWalk{work: work{ctx: ctx}, l: l, schema: l.es.Schema(), vars: rc.Variables, frags: map[string]*fragCost{}, doc: rc.Doc}
	depth, cost := w.set(rc.Operation.SelectionSet, 0)
	if l.observe != nil {
		l.observe(w.units)
	}
	switch {
	case w.err != nil:
		return w.err
	case depth > l.depth:
		return w.depthError(depth)
	case cost > l.complexity:
		return w.complexityError(cost)
	}
	return nil
}

// fragCost is a fragment's depth (below the level it is spread at) and complexity.
type fragCost struct {
	depth, cost int
	done        bool
}

type opWalk struct {
	work
	l      *operationLimits
	schema *ast.Schema
	vars   map[string]any
	doc    *ast.QueryDocument
	frags  map[string]*fragCost
	err    *gqlerror.Error
	// nested counts the fragment walks and introspection fields the walk is inside: a
	// fragment's depth is relative (checked where it is spread) and introspection's does not
	// count, so the depth limit is checked only where nested is 0.
	nested int
}

func (w *opWalk) depthError(depth int) *gqlerror.Error {
	return codedError(model.Errorf(model.CodeDepthLimitExceeded, "operation is nested at least %d levels deep, more than the limit of %d", depth, w.l.depth))
}

func (w *opWalk) complexityError(cost int) *gqlerror.Error {
	return codedError(model.Errorf(model.CodeComplexityLimitExceeded, "operation has a complexity of at least %d, more than the limit of %d", cost, w.l.complexity))
}

// set walks a selection set at depth (the number of fields above it) and returns the deepest
// level reached and the set's complexity. Complexities only grow toward the root (a field
// costs at least what its children cost), so a partial sum over the limit is final: the walk
// stops there (w.err).
func (w *opWalk) set(set ast.SelectionSet, depth int) (deepest, cost int) {
	deepest = depth
	for _, sel := range set {
		if w.err != nil {
			return deepest, cost
		}
		if !w.step() {
			w.err = errTimedOut(w.ctx)
			return deepest, cost
		}
		switch s := sel.(type) {
		case *ast.Field:
			d, c := w.field(s, depth)
			deepest, cost = max(deepest, d), satAdd(cost, c)
		case *ast.InlineFragment:
			d, c := w.set(s.SelectionSet, depth)
			deepest, cost = max(deepest, d), satAdd(cost, c)
		case *ast.FragmentSpread:
			fc := w.fragment(s.Name)
			deepest, cost = max(deepest, depth+fc.depth), satAdd(cost, fc.cost)
		}
		switch {
		case w.err != nil:
		case w.nested == 0 && deepest > w.l.depth:
			w.err = w.depthError(deepest)
		case cost > w.l.complexity:
			w.err = w.complexityError(cost)
		}
	}
	return deepest, cost
}

func (w *opWalk) fragment(name string) fragCost {
	if fc, ok := w.frags[name]; ok {
		if !fc.done {
			return fragCost{}
		}
		return *fc
	}
	fc := &fragCost{}
	w.frags[name] = fc
	if def := w.doc.Fragments.ForName(name); def != nil {
		w.nested++
		fc.depth, fc.cost = w.set(def.SelectionSet, 0)
		w.nested--
	}
	fc.done = true
	return *fc
}

// field returns a field's depth and complexity, as gqlgen's complexity package computes it:
// __schema is free; an object's children are priced first; the schema's complexity function
// for the field, when it has one (the worst implementation's, for a field of an interface),
// else 1 plus the children.
func (w *opWalk) field(f *ast.Field, depth int) (int, int) {
	intro := strings.HasPrefix(f.Name, "__")
	if intro && !w.l.introspection && (f.Name == "__schema" || f.Name == "__type") {
		w.err = codedError(model.Errorf(codeIntrospectionDisabled, "introspection is disabled on this server"))
		return depth, 0
	}
	if f.Definition == nil || f.ObjectDefinition == nil {
		return depth, 1
	}
	def := w.schema.Types[f.Definition.Type.Name()]
	if def == nil {
		return depth, 1
	}
	var deepest, child int
	switch def.Kind {
	case ast.Object, ast.Interface, ast.Union:
		if intro {
			w.nested++
		}
		deepest, child = w.set(f.SelectionSet, depth+1)
		if intro {
			w.nested--
		}
	default:
		deepest = depth + 1
	}
	if intro {
		deepest = depth // introspection does not count toward the depth
		if def.Name == "__Schema" {
			return deepest, 0
		}
	}
	if w.err != nil {
		return deepest, child
	}
	args := f.ArgumentMap(w.vars)
	w.units += len(f.Arguments)
	price := func(typ *ast.Definition) int {
		if c, ok := w.l.es.Complexity(w.ctx, typ.Name, f.Name, child, args); ok && c >= 1 {
			return c
		}
		return satAdd(1, child)
	}
	if f.ObjectDefinition.Kind == ast.Interface {
		worst := 0
		for _, t := range w.schema.GetPossibleTypes(f.ObjectDefinition) {
			worst = max(worst, price(t))
		}
		return deepest, worst
	}
	return deepest, price(f.ObjectDefinition)
}

// rulesWithoutHints are gqlparser's validation rules with their "Did you mean ...?" hints
// cut off (unknown arguments, enum values, input fields and types, besides the fields gqlgen
// already leaves bare): with introspection off, a hint would name what the schema hides.
func rulesWithoutHints() *rules.Rules {
	rs := rules.NewDefaultRules()
	for name, f := range rs.GetInner() {
		rs.ReplaceRule(name, func(obs *core.Events, addError core.AddErrFunc) {
			f(obs, func(opts ...core.ErrorOption) { addError(append(opts, dropHint)...) })
		})
	}
	return rs
}

func dropHint(e *gqlerror.Error) {
	if i := strings.Index(e.Message, " Did you mean"); i >= 0 {
		e.Message = e.Message[:i]
	}
}

// errOperationBudget is the cause of an operation's context that ran out of its time budget.
var errOperationBudget = errors.New("operation time budget spent")

// withBudget returns ctx ending after the budget d, with errOperationBudget as its cause.
func withBudget(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, d, errOperationBudget)
}

var errOutOfTime = model.Errorf(codeOperationTimeout, "the operation ran out of its time budget")

// outOfBudget says whether ctx ended because its operation's budget ran out.
func outOfBudget(ctx context.Context) bool {
	return ctx.Err() != nil && errors.Is(context.Cause(ctx), errOperationBudget)
}

// operationBudget gives every query and mutation a server-side time budget (plain HTTP has
// one already, from before its checks: httpTransport; this one covers the operations of a
// WebSocket). A subscription has none: it lives as long as its client wants. The budget ends
// with the operation's last response (a @defer'd one included).
func operationBudget(d time.Duration) graphql.OperationMiddleware {
	return func(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
		if isSubscription(ctx) {
			return next(ctx)
		}
		ctx, cancel := withBudget(ctx, d)
		h := next(ctx)
		first := true
		return func(ctx context.Context) *graphql.Response {
			r := h(ctx)
			if r == nil && first && outOfBudget(ctx) {
				// gqlgen ends an operation whose context ended before it ran with no response.
				r = &graphql.Response{Errors: gqlerror.List{codedError(errOutOfTime)}}
			}
			first = false
			if r == nil || r.HasNext == nil || !*r.HasNext {
				cancel()
			}
			return r
		}
	}
}

// codeResponseTooLarge: a response over Limits.ResponseBytes.
const codeResponseTooLarge model.Code = "RESPONSE_TOO_LARGE"

// responseMeter adds up the size of the values a response resolved.
type responseMeter struct {
	limit int64
	size  atomic.Int64
}

type responseMeterKey struct{}

// limitResponse bounds every response (each event of a subscription) to limit bytes. While
// the response resolves, meterField adds up the values it resolves and fails the fields after
// the bound (so a page of huge stored values never sits in memory five times over); a
// response whose values or whose JSON data pass the bound answers one RESPONSE_TOO_LARGE error
// and no data.
func limitResponse(limit int) graphql.ResponseMiddleware {
	return func(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
		m := &responseMeter{limit: int64(limit)}
		resp := next(context.WithValue(ctx, responseMeterKey{}, m))
		if resp == nil || (m.size.Load() <= m.limit && len(resp.Data) <= limit) {
			return resp
		}
		e := errResponseTooLarge(limit)
		return &graphql.Response{Errors: gqlerror.List{codedError(e)}, Extensions: resp.Extensions, HasNext: resp.HasNext}
	}
}

func errResponseTooLarge(limit int) *model.Error {
	return model.Errorf(codeResponseTooLarge, "the response is larger than the limit of %d bytes: ask for fewer items or fields", limit)
}

// meterField is the field middleware of limitResponse: it adds the size of what a field
// resolved (strings as their length, anything else as a few bytes: an object's own size is
// its fields') and refuses to resolve fields once the response is over its bound.
func meterField(ctx context.Context, next graphql.Resolver) (any, error) {
	m, _ := ctx.Value(responseMeterKey{}).(*responseMeter)
	if m == nil {
		return next(ctx)
	}
	if m.size.Load() > m.limit {
		return nil, errResponseTooLarge(int(m.limit))
	}
	res, err := next(ctx)
	n := int64(8)
	switch v := res.(type) {
	case string:
		n += int64(len(v))
	case *string:
		if v != nil {
			n += int64(len(*v))
		}
	case []string:
		for _, s := range v {
			n += int64(len(s)) + 3
		}
	}
	if m.size.Add(n) > m.limit {
		return nil, errResponseTooLarge(int(m.limit))
	}
	return res, err
}
