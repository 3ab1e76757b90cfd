package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v3"

	"orchard/db"
	"orchard/license"
	"orchard/model"
)

// databaseFlag is -database, from ORCHARD_DATABASE, else sqlite:orchard.db.
func databaseFlag(env map[string]string) cli.Flag {
	return &cli.StringFlag{Name: "database", Value: "sqlite:orchard.db",
		Usage: "sqlite:PATH or mysql://USER:PASS@HOST:PORT/DB", Sources: fromEnv(env, "ORCHARD_DATABASE")}
}

// target parses -database. existing: the command reads a database that must already be
// there, so a mistyped SQLite path is refused instead of creating an empty database.
func target(cmd *cli.Command, existing bool) (*db.Target, error) {
	t, err := db.ParseTarget(cmd.String("database"))
	if err != nil {
		return nil, fmt.Errorf("ORCHARD_DATABASE: %w", err)
	}
	if existing && t.Dialect == db.SQLite {
		if _, err := os.Stat(t.Path); err != nil {
			return nil, fmt.Errorf("ORCHARD_DATABASE: no database at %s (run orchard serve or orchard migrate first, or fix -database)", t.Path)
		}
	}
	return t, nil
}

// migrateCommand applies pending migrations and reports the schema version.
func migrateCommand(env map[string]string) *cli.Command {
	return &cli.Command{
		Name:  "migrate",
		Usage: "apply database migrations and exit",
		Flags: []cli.Flag{databaseFlag(env)},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Args().Present() {
				return usageErrorf("migrate takes no arguments, got %q", cmd.Args().First())
			}
			t, err := target(cmd, false)
			if err != nil {
				return err
			}
			stdout, stderr := cmd.Root().Writer, cmd.Root().ErrWriter
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
		},
	}
}

// apikeyCommand manages API keys from the command line (for recovery and automation; the
// API's createApiKey/revokeApiKey do the same). create may start a database (a key before the
// first start); list and revoke read one that must exist.
func apikeyCommand(env map[string]string) *cli.Command {
	// withService opens the database (existing: it must be there) and runs fn on it.
	withService := func(existing bool, fn func(ctx context.Context, cmd *cli.Command, d *db.DB, svc *license.Service) error) cli.ActionFunc {
		return func(ctx context.Context, cmd *cli.Command) error {
			t, err := target(cmd, existing)
			if err != nil {
				return err
			}
			d, err := openDB(ctx, t, newLogger(cmd.Root().ErrWriter, 4))
			if err != nil {
				return err
			}
			defer d.Close()
			return fn(ctx, cmd, d, license.New(d, license.Options{}))
		}
	}
	cliActor := license.Actor{Kind: model.ActorSystem, Name: "command line"}
	return &cli.Command{
		Name:  "apikey",
		Usage: "create, list and revoke API keys",
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Args().Present() {
				return usageErrorf("unknown apikey command %q (commands: create, list, revoke)", cmd.Args().First())
			}
			return usageErrorf("apikey needs a command: create, list or revoke (see orchard apikey -h)")
		},
		Commands: []*cli.Command{
			{
				Name:      "create",
				Usage:     "create a key and print its secret once",
				UsageText: "orchard apikey create -name NAME -role ADMIN|OPERATOR|VIEWER [-database DSN]",
				Flags: []cli.Flag{
					databaseFlag(env),
					&cli.StringFlag{Name: "name", Usage: "a name for the key"},
					&cli.StringFlag{Name: "role", Value: "VIEWER", Usage: "ADMIN, OPERATOR or VIEWER"},
				},
				Action: withService(false, func(ctx context.Context, cmd *cli.Command, d *db.DB, svc *license.Service) error {
					k, secret, err := svc.CreateAPIKey(ctx, cliActor, cmd.String("name"), model.Role(strings.ToUpper(cmd.String("role"))))
					if err != nil {
						return err
					}
					fmt.Fprintf(cmd.Root().Writer, "created API key %d %q with role %s; its secret is shown only this once:\n%s\n", k.ID, k.Name, k.Role, secret)
					return nil
				}),
			},
			{
				Name:  "list",
				Usage: "list the keys (never their secrets)",
				Flags: []cli.Flag{
					databaseFlag(env),
					&cli.BoolFlag{Name: "all", Usage: "include revoked keys"},
				},
				Action: withService(true, func(ctx context.Context, cmd *cli.Command, d *db.DB, svc *license.Service) error {
					keys, _, err := d.ListAPIKeys(ctx, cmd.Bool("all"), db.Page{First: 100000})
					if err != nil {
						return err
					}
					tw := tabwriter.NewWriter(cmd.Root().Writer, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "ID\tNAME\tROLE\tPREFIX\tCREATED\tLAST USED\tREVOKED")
					for _, k := range keys {
						fmt.Fprintf(tw, "%d\t%s\t%s\t%s…\t%s\t%s\t%s\n", k.ID, k.Name, k.Role, k.Prefix,
							k.CreatedAt.Format("2006-01-02 15:04"), fmtTime(k.LastUsedAt), fmtTime(k.RevokedAt))
					}
					return tw.Flush()
				}),
			},
			{
				Name:      "revoke",
				Usage:     "revoke a key by its id",
				ArgsUsage: "ID",
				Flags:     []cli.Flag{databaseFlag(env)},
				Before: func(ctx context.Context, cmd *cli.Command) (context.Context, error) {
					if cmd.Args().Len() != 1 {
						return ctx, usageErrorf("usage: orchard apikey revoke ID (see orchard apikey list)")
					}
					return ctx, nil
				},
				Action: withService(true, func(ctx context.Context, cmd *cli.Command, d *db.DB, svc *license.Service) error {
					id, err := strconv.ParseInt(cmd.Args().First(), 10, 64)
					if err != nil || id <= 0 {
						return usageErrorf("%q is not a key id (see orchard apikey list)", cmd.Args().First())
					}
					k, err := svc.RevokeAPIKey(ctx, cliActor, id)
					if err != nil {
						return err
					}
					fmt.Fprintf(cmd.Root().Writer, "revoked API key %d %q\n", k.ID, k.Name)
					return nil
				}),
			},
		},
	}
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Format("2006-01-02 15:04")
}
