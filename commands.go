package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"orchard/db"
	"orchard/license"
	"orchard/model"
)

// databaseFlag adds -database (default ORCHARD_DATABASE, else sqlite:orchard.db) to fs and
// returns a function that parses it once fs is parsed.
func databaseFlag(fs *flag.FlagSet, env []string) func() (*db.Target, error) {
	def := "sqlite:orchard.db"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "ORCHARD_DATABASE="); ok {
			def = v
		}
	}
	dsn := fs.String("database", def, "sqlite:PATH or mysql://USER:PASS@HOST:PORT/DB (ORCHARD_DATABASE)")
	return func() (*db.Target, error) {
		t, err := db.ParseTarget(*dsn)
		if err != nil {
			return nil, fmt.Errorf("ORCHARD_DATABASE: %w", err)
		}
		return t, nil
	}
}

// migrateCmd applies pending migrations and reports the schema version.
func migrateCmd(ctx context.Context, args, env []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("orchard migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	target := databaseFlag(fs, env)
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	t, err := target()
	if err != nil {
		return err
	}
	d, err := db.Open(ctx, t, db.Options{Logger: newLogger(stderr, 0)})
	if err != nil {
		return err
	}
	defer d.Close()
	applied, err := d.Migrate(ctx)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", t, err)
	}
	st, err := d.Status(ctx)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintf(stdout, "%s is up to date (schema version %d)\n", t, st.Applied)
	} else {
		fmt.Fprintf(stdout, "%s migrated to schema version %d (applied %v)\n", t, st.Applied, applied)
	}
	return nil
}

// apikeyCmd manages API keys from the command line (for recovery and automation; the API's
// createApiKey/revokeApiKey do the same).
func apikeyCmd(ctx context.Context, args, env []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return errUsage
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("orchard apikey "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	target := databaseFlag(fs, env)
	name := fs.String("name", "", "a name for the key (create)")
	role := fs.String("role", "VIEWER", "ADMIN, OPERATOR or VIEWER (create)")
	all := fs.Bool("all", false, "include revoked keys (list)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	t, err := target()
	if err != nil {
		return err
	}
	d, err := openDB(ctx, t, newLogger(stderr, 4))
	if err != nil {
		return err
	}
	defer d.Close()
	svc := license.New(d, license.Options{})
	cli := license.Actor{Kind: model.ActorSystem, Name: "command line"}
	switch sub {
	case "create":
		k, secret, err := svc.CreateAPIKey(ctx, cli, *name, model.Role(strings.ToUpper(*role)))
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "created API key %d %q with role %s; its secret is shown only this once:\n%s\n", k.ID, k.Name, k.Role, secret)
		return nil
	case "list":
		keys, _, err := d.ListAPIKeys(ctx, *all, db.Page{First: 100000})
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tROLE\tPREFIX\tCREATED\tLAST USED\tREVOKED")
		for _, k := range keys {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s…\t%s\t%s\t%s\n", k.ID, k.Name, k.Role, k.Prefix,
				k.CreatedAt.Format("2006-01-02 15:04"), fmtTime(k.LastUsedAt), fmtTime(k.RevokedAt))
		}
		return tw.Flush()
	case "revoke":
		if fs.NArg() != 1 {
			return fmt.Errorf("usage: orchard apikey revoke ID")
		}
		id, err := strconv.ParseInt(fs.Arg(0), 10, 64)
		if err != nil || id <= 0 {
			return fmt.Errorf("%q is not a key id (see orchard apikey list)", fs.Arg(0))
		}
		k, err := svc.RevokeAPIKey(ctx, cli, id)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked API key %d %q\n", k.ID, k.Name)
		return nil
	}
	fmt.Fprintf(stderr, "unknown apikey command %q\n%s\n", sub, usage)
	return errUsage
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Format("2006-01-02 15:04")
}
