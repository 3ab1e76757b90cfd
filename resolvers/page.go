package resolvers

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"

	"orchard/db"
	"orchard/graph"
)

// Page sizes: doc/design.md §3 caps `first` at 100.
const (
	defaultPageSize = 50
	maxPageSize     = 100
)

// cursors are opaque: base64url of "c:<id>" (keyset on the id order).
func encodeCursor(id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("c:" + strconv.FormatInt(id, 10)))
}

func decodeCursor(c string) (int64, bool) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(c, "="))
	if err != nil {
		return 0, false
	}
	s, ok := strings.CutPrefix(string(b), "c:")
	if !ok {
		return 0, false
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, false
	}
	return id, true
}

// pageArgs validates first/after into a db.Page.
func pageArgs(first *int, after *string) (db.Page, error) {
	p := db.Page{First: defaultPageSize}
	if first != nil {
		if *first < 1 || *first > maxPageSize {
			return p, badInput([]string{"first"}, "first must be between 1 and %d", maxPageSize)
		}
		p.First = *first
	}
	if after != nil && *after != "" {
		id, ok := decodeCursor(*after)
		if !ok {
			return p, badInput([]string{"after"}, "after is not a valid cursor")
		}
		p.After = id
	}
	return p, nil
}

// connection builds a connection from a page of items.
func connection[T any](items []*T, more bool, p db.Page, id func(*T) int64, count func(ctx context.Context) (int, error)) *graph.Connection[T] {
	c := &graph.Connection[T]{
		Edges:    make([]*graph.Edge[T], len(items)),
		PageInfo: &graph.PageInfo{HasNextPage: more, HasPreviousPage: p.After > 0},
		Count:    count,
	}
	for i, it := range items {
		c.Edges[i] = &graph.Edge[T]{Cursor: encodeCursor(id(it)), Node: it}
	}
	if len(c.Edges) > 0 {
		c.PageInfo.StartCursor = &c.Edges[0].Cursor
		c.PageInfo.EndCursor = &c.Edges[len(c.Edges)-1].Cursor
	}
	return c
}
