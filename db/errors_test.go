package db_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// errorGuardAllowed lists the exported functions whose errors may come back as they are, each
// with the reason. Keep it short: a new entry needs a reason a reviewer accepts.
var errorGuardAllowed = map[string]string{
	// Tx passes its callback's error through unchanged on purpose: the callback's own
	// operations name themselves, and callers test the callback's sentinels with errors.Is.
	"DB.Tx": "passes the callback's error through",
	// Close and Ping report the pool's error; there is no query to name.
	"DB.Close": "the pool's own error, no query",
	"DB.Ping":  "the pool's own error, no query",
	// ParseTarget's errors are start-up messages about the operator's own setting, each
	// saying what is wrong with it; there is no query to name.
	"ParseTarget": "start-up messages about the setting, no query",
}

// TestStoreErrorsNameTheOperation is the guard of the rule "every error a store function
// returns names the operation that failed" (so that a logged "Error 1213" says which query it
// was). It reads the package's source (not its tests) and, for every exported function and
// method, checks each return statement's error result: it must be nil, a call to wrap, a
// fmt.Errorf that wraps with %w (or makes a new error without flattening one), a sentinel of
// the package or of model (errNotFound, ErrDuplicate, model.ErrX), or a typed model error.
// Returns inside function literals (a Tx callback) return to the literal, not to the
// caller, and are not checked: the Tx call around them is. A bare `return helper(...)` of a
// function with several results, or a naked return, cannot be checked and is reported.
func TestStoreErrorsNameTheOperation(t *testing.T) {
	t.Parallel()
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var parsed []*ast.File
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		parsed = append(parsed, f)
	}
	sentinels := packageSentinels(parsed)
	type finding struct {
		file string
		line int
		text string
	}
	var bad []finding
	for _, f := range parsed {
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil || !exportedFunc(fn) {
				continue
			}
			errAt, n := errorResult(fn.Type)
			if errAt < 0 {
				continue
			}
			name := funcName(fn)
			if _, ok := errorGuardAllowed[name]; ok {
				continue
			}
			ast.Inspect(fn.Body, func(node ast.Node) bool {
				switch x := node.(type) {
				case *ast.FuncLit:
					return false
				case *ast.ReturnStmt:
					if why := checkReturn(x, errAt, n, sentinels); why != "" {
						p := fset.Position(x.Pos())
						bad = append(bad, finding{p.Filename, p.Line, p.Filename + ":" + strconv.Itoa(p.Line) + " " + name + ": " + why})
					}
				}
				return true
			})
		}
	}
	sort.Slice(bad, func(i, j int) bool {
		if bad[i].file != bad[j].file {
			return bad[i].file < bad[j].file
		}
		return bad[i].line < bad[j].line
	})
	if len(bad) > 0 {
		lines := make([]string, len(bad))
		for i, b := range bad {
			lines[i] = b.text
		}
		t.Errorf("%d returns give an error that names no operation (wrap it: wrap(\"op\", err) or fmt.Errorf(\"op: %%w\", err)):\n%s",
			len(bad), strings.Join(lines, "\n"))
	}
}

// TestStoreErrorGuardCatches runs the guard's check on examples, so that the guard itself can
// fail: a bare helper result, a bare err, a flattening fmt.Errorf and a naked return are
// caught; wrapped, nil and sentinel results pass.
func TestStoreErrorGuardCatches(t *testing.T) {
	t.Parallel()
	src := `package db
func (d *DB) A() (int, error) { return findOne(q) }
func (d *DB) B() error { return err }
func (d *DB) C() error { return fmt.Errorf("c: %v", err) }
func (d *DB) D() (n int, err error) { return }
func (d *DB) E() error { return res.Error }
func (d *DB) F() (int, error) { return 0, notFound(err) }
func (d *DB) G() (int, error) { if x { return 0, wrap("g", err) }; return 1, nil }
func (d *DB) H() error { return fmt.Errorf("h: %w", err) }
func (d *DB) I() error { return ErrDuplicate }
func (d *DB) J() error { return model.ErrNotFound }
func (d *DB) K() error { return fmt.Errorf("no row %d", id) }
func (d *DB) L() error { return d.Tx(ctx, func(tx *DB) error { return err }) }
func (d *DB) M() error { return model.Errorf(model.CodeConflict, "m") }
func (d *DB) N() error { return errNotFound }
func (d *DB) unexported() error { return err }
var ErrDuplicate = errors.New("dup")
var errNotFound = model.ErrNotFound
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "x.go", src, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	sentinels := packageSentinels([]*ast.File{f})
	got := map[string]bool{}
	for _, decl := range f.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok || !exportedFunc(fn) {
			continue
		}
		errAt, n := errorResult(fn.Type)
		ast.Inspect(fn.Body, func(node ast.Node) bool {
			switch x := node.(type) {
			case *ast.FuncLit:
				return false
			case *ast.ReturnStmt:
				if checkReturn(x, errAt, n, sentinels) != "" {
					got[fn.Name.Name] = true
				}
			}
			return true
		})
	}
	want := map[string]bool{"A": true, "B": true, "C": true, "D": true, "E": true, "F": true, "L": true}
	for _, name := range []string{"A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L", "M", "N"} {
		if got[name] != want[name] {
			t.Errorf("guard on %s: flagged %v, want %v", name, got[name], want[name])
		}
	}
}

// exportedFunc reports an exported function, or an exported method of an exported type.
func exportedFunc(fn *ast.FuncDecl) bool {
	if !fn.Name.IsExported() {
		return false
	}
	if fn.Recv == nil || len(fn.Recv.List) == 0 {
		return true
	}
	return ast.IsExported(recvName(fn))
}

func recvName(fn *ast.FuncDecl) string {
	typ := fn.Recv.List[0].Type
	if s, ok := typ.(*ast.StarExpr); ok {
		typ = s.X
	}
	if ix, ok := typ.(*ast.IndexExpr); ok {
		typ = ix.X
	}
	if id, ok := typ.(*ast.Ident); ok {
		return id.Name
	}
	return ""
}

func funcName(fn *ast.FuncDecl) string {
	if fn.Recv == nil {
		return fn.Name.Name
	}
	return recvName(fn) + "." + fn.Name.Name
}

// errorResult returns the index of the function's error result (-1: none) and its number of
// results.
func errorResult(ft *ast.FuncType) (int, int) {
	if ft.Results == nil {
		return -1, 0
	}
	at, n := -1, 0
	for _, field := range ft.Results.List {
		k := max(1, len(field.Names))
		if id, ok := field.Type.(*ast.Ident); ok && id.Name == "error" {
			at = n + k - 1
		}
		n += k
	}
	return at, n
}

// packageSentinels collects the package-level error variables (var ErrX = errors.New(...),
// var errNotFound = model.ErrNotFound): returning one names the failure by itself.
func packageSentinels(files []*ast.File) map[string]bool {
	out := map[string]bool{}
	for _, f := range files {
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if i < len(vs.Values) && isSentinelValue(vs.Values[i]) {
						out[name.Name] = true
					}
				}
			}
		}
	}
	return out
}

func isSentinelValue(e ast.Expr) bool {
	switch v := e.(type) {
	case *ast.CallExpr:
		return isCallTo(v, "errors", "New")
	case *ast.SelectorExpr:
		return isModelSentinel(v)
	}
	return false
}

func isModelSentinel(s *ast.SelectorExpr) bool {
	pkg, ok := s.X.(*ast.Ident)
	return ok && pkg.Name == "model" && strings.HasPrefix(s.Sel.Name, "Err")
}

func isCallTo(c *ast.CallExpr, pkg, name string) bool {
	sel, ok := c.Fun.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	id, ok := sel.X.(*ast.Ident)
	return ok && id.Name == pkg && sel.Sel.Name == name
}

// checkReturn explains why a return's error result names no operation ("" when it does).
func checkReturn(r *ast.ReturnStmt, errAt, n int, sentinels map[string]bool) string {
	switch {
	case len(r.Results) == 0:
		return "naked return"
	case len(r.Results) != n:
		return "returns the results of " + exprText(r.Results[0]) + " as they are"
	}
	return checkErrorExpr(r.Results[errAt], sentinels)
}

func checkErrorExpr(e ast.Expr, sentinels map[string]bool) string {
	switch v := e.(type) {
	case *ast.Ident:
		if v.Name == "nil" || sentinels[v.Name] {
			return ""
		}
	case *ast.SelectorExpr:
		if isModelSentinel(v) {
			return ""
		}
	case *ast.UnaryExpr: // &model.Error{...}
		if cl, ok := v.X.(*ast.CompositeLit); ok {
			if sel, ok := cl.Type.(*ast.SelectorExpr); ok && exprText(sel) == "model.Error" {
				return ""
			}
		}
	case *ast.CallExpr:
		if id, ok := v.Fun.(*ast.Ident); ok && id.Name == "wrap" {
			return ""
		}
		if isCallTo(v, "model", "Errorf") || isCallTo(v, "model", "FieldError") {
			return ""
		}
		if isCallTo(v, "fmt", "Errorf") && len(v.Args) > 0 {
			format, ok := v.Args[0].(*ast.BasicLit)
			if ok && strings.Contains(format.Value, "%w") {
				return ""
			}
			if ok && !formatsAnError(v.Args[1:]) {
				return "" // a new error, flattening none
			}
			return "fmt.Errorf flattens an error: use %w"
		}
	}
	return "returns " + exprText(e) + " bare"
}

// formatsAnError reports an argument that looks like an error (err, someErr, x.Error, ...):
// formatting it with %v would lose it for errors.Is.
func formatsAnError(args []ast.Expr) bool {
	for _, a := range args {
		if strings.Contains(strings.ToLower(exprText(a)), "err") {
			return true
		}
	}
	return false
}

// exprText renders an expression shortly for the failure message.
func exprText(e ast.Expr) string {
	switch v := e.(type) {
	case *ast.Ident:
		return v.Name
	case *ast.SelectorExpr:
		return exprText(v.X) + "." + v.Sel.Name
	case *ast.CallExpr:
		return exprText(v.Fun) + "(...)"
	case *ast.IndexExpr:
		return exprText(v.X) + "[" + exprText(v.Index) + "]"
	case *ast.IndexListExpr:
		return exprText(v.X) + "[...]"
	case *ast.StarExpr:
		return "*" + exprText(v.X)
	case *ast.UnaryExpr:
		return v.Op.String() + exprText(v.X)
	case *ast.BasicLit:
		return v.Value
	}
	return "expression"
}
