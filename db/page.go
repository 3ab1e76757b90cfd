package db

// The read side of the API: filtered keyset pages and counts of every listed entity, batch
// reads by id for the dataloaders, and per-parent pages for nested connections (each relation
// lists, in one statement, a page of children for every parent the dataloader batched, and
// counts them per parent in another). Every list orders by id; the filters have indexes behind
// them (see the migrations). Each entity's filter and queries live in its aggregate's file.

import (
	"context"
	"fmt"
	"strings"

	"gorm.io/gorm"
)

// Page asks for one keyset page: First items after the item with id After (0: from the
// start), in ascending id order, or descending when Desc (newest first).
type Page struct {
	First int
	After int64
	Desc  bool
}

// list reads one page of a filtered query; it fetches one extra row to learn whether another
// page follows. table qualifies the id column so filters may join.
func list[T any](ctx context.Context, q *gorm.DB, table string, p Page) ([]*T, bool, error) {
	col := table + ".id"
	if p.After > 0 {
		if p.Desc {
			q = q.Where(col+" < ?", p.After)
		} else {
			q = q.Where(col+" > ?", p.After)
		}
	}
	order := col + " ASC"
	if p.Desc {
		order = col + " DESC"
	}
	out, err := findAll[T](q.WithContext(ctx).Order(order).Limit(p.First + 1))
	if err != nil {
		return nil, false, err
	}
	more := len(out) > p.First
	if more {
		out = out[:p.First]
	}
	return out, more, nil
}

// count counts the rows of a filtered query. table is the counted table, as for list (it
// names nothing in the error: the caller wraps it with its operation).
func count(ctx context.Context, q *gorm.DB, table string) (int, error) {
	var n int64
	if err := q.WithContext(ctx).Count(&n).Error; err != nil {
		return 0, err
	}
	return int(n), nil
}

// maxIDsPerRead bounds the ids of one byIDs statement. Every batch of the read path and every
// bulk call (10,000 targets at most) fits in one statement; a policy evaluation of a large
// fleet reads more, and SQLite refuses a statement of more than 32,766 variables.
const maxIDsPerRead = 10000

// byIDs reads the rows with the given ids, in no particular order (loaders put them in key
// order): one statement per maxIDsPerRead ids.
func byIDs[T any](ctx context.Context, d *DB, ids []int64) ([]*T, error) {
	out := []*T{}
	for _, chunk := range chunks(ids, maxIDsPerRead) {
		rows, err := findAll[T](d.with(ctx).Where("id IN ?", chunk))
		if err != nil {
			return nil, err
		}
		out = append(out, rows...)
	}
	return out, nil
}

// ChildPage asks for one parent's page of children in a nested connection.
type ChildPage struct {
	ParentID int64
	After    int64
}

// Relation describes a one-to-many (or many-to-many through a join table) relation whose
// children are listed per parent in one statement.
type Relation struct {
	// Table is the child table; From is the FROM clause (the table, or a join).
	Table string
	From  string
	// ParentExpr is the SQL expression giving a child row's parent id.
	ParentExpr string
	// Desc lists newest first.
	Desc bool
}

// withParent carries a child row and the parent it was read for.
type withParent[T any] struct {
	Row           T     `gorm:"embedded"`
	OrchardParent int64 `gorm:"column:orchard_parent"`
}

// childrenOf reads, for every requested parent, one page of its children (First+1 rows, to
// learn whether more follow) in one statement: a UNION ALL of per-parent keyset queries,
// each of which an index on the parent column serves directly, however many children other
// parents have.
func childrenOf[T any](ctx context.Context, d *DB, r Relation, where string, args []any, first int, pages []ChildPage) (map[int64][]*T, error) {
	out := make(map[int64][]*T, len(pages))
	if len(pages) == 0 {
		return out, nil
	}
	var sb strings.Builder
	var all []any
	for i, p := range pages {
		if i > 0 {
			sb.WriteString(" UNION ALL ")
		}
		fmt.Fprintf(&sb, "SELECT * FROM (SELECT %s.*, %s AS orchard_parent FROM %s WHERE %s = ?",
			r.Table, r.ParentExpr, r.From, r.ParentExpr)
		all = append(all, p.ParentID)
		switch {
		case r.Desc && p.After > 0:
			fmt.Fprintf(&sb, " AND %s.id < ?", r.Table)
			all = append(all, p.After)
		case !r.Desc:
			fmt.Fprintf(&sb, " AND %s.id > ?", r.Table)
			all = append(all, p.After)
		}
		if where != "" {
			sb.WriteString(" AND (" + where + ")")
			all = append(all, args...)
		}
		order := "ASC"
		if r.Desc {
			order = "DESC"
		}
		fmt.Fprintf(&sb, " ORDER BY %s.id %s LIMIT %d) AS c%d", r.Table, order, first+1, i)
	}
	var rows []withParent[T]
	if err := d.with(ctx).Raw(sb.String(), all...).Scan(&rows).Error; err != nil {
		return nil, err
	}
	for i := range rows {
		row := rows[i].Row
		out[rows[i].OrchardParent] = append(out[rows[i].OrchardParent], &row)
	}
	return out, nil
}

// countChildren counts the children of each parent in one statement.
func countChildren(ctx context.Context, d *DB, r Relation, where string, args []any, parents []int64) (map[int64]int, error) {
	out := make(map[int64]int, len(parents))
	if len(parents) == 0 {
		return out, nil
	}
	q := fmt.Sprintf("SELECT %s AS parent, COUNT(*) AS n FROM %s WHERE %s IN ?", r.ParentExpr, r.From, r.ParentExpr)
	all := []any{parents}
	if where != "" {
		q += " AND (" + where + ")"
		all = append(all, args...)
	}
	q += " GROUP BY " + r.ParentExpr
	var rows []struct {
		Parent int64
		N      int
	}
	if err := d.with(ctx).Raw(q, all...).Scan(&rows).Error; err != nil {
		return nil, err
	}
	for _, row := range rows {
		out[row.Parent] = row.N
	}
	return out, nil
}

// escapeLike escapes LIKE wildcards with '!'.
func escapeLike(s string) string {
	r := strings.NewReplacer("!", "!!", "%", "!%", "_", "!_")
	return r.Replace(s)
}
