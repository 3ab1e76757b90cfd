package main

// The command line, by convention (urfave/cli): `orchard -h` and `orchard help` list the
// commands and exit 0; every command has its own -h that shows only its flags and does nothing
// else (no database is opened); flags are typed (a duration shows as one); every setting of
// the serve command is also its ORCHARD_* variable (flags win); `orchard version` and
// `orchard -version` print the build. A usage mistake exits 2 with one line; any other
// failure exits 1.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/urfave/cli/v3"
)

// commandNames lists the commands, for messages.
const commandNames = "serve, migrate, apikey, applesim, version, help"

// usageError is a mistake in the command line: main exits 2 and prints its one line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// errUsage matches every usageError (errors.Is(err, errUsage)).
var errUsage = errors.New("usage")

func (e *usageError) Is(target error) bool { return target == errUsage }

// run dispatches the subcommands; with no command, or flags first, it serves.
func run(ctx context.Context, args, env []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (strings.HasPrefix(args[0], "-") && !rootFlag(args[0])) {
		args = append([]string{"serve"}, args...)
	}
	app := rootCommand(envMap(env), serve)
	app.Writer, app.ErrWriter = stdout, stderr
	return flagError(app.Run(ctx, append([]string{"orchard"}, args...)))
}

// rootFlag says whether a leading argument is one of the root's own flags (help, version),
// rather than a flag of the default command, serve.
func rootFlag(a string) bool {
	switch strings.TrimLeft(a, "-") {
	case "h", "help", "version", "v":
		return true
	}
	return false
}

// rootCommand is the command tree. serveFn runs the service with a checked configuration.
func rootCommand(env map[string]string, serveFn func(context.Context, *Config, io.Writer, io.Writer) error) *cli.Command {
	root := &cli.Command{
		Name:        "orchard",
		Usage:       "Apple Apps and Books licenses for device fleets, behind a GraphQL API",
		UsageText:   "orchard [serve] [flags]\norchard COMMAND [flags]",
		Description: "With no command, or flags first, orchard serves. Every serve flag is also an ORCHARD_* environment variable (flags win).",
		HideVersion: true,
		Flags:       []cli.Flag{&cli.BoolFlag{Name: "version", Usage: "print the version, commit and Go version, and exit"}},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Bool("version") {
				fmt.Fprint(cmd.Root().Writer, versionText())
				return nil
			}
			if cmd.Args().Present() {
				return usageErrorf("unknown command %q (commands: %s)", cmd.Args().First(), commandNames)
			}
			return cli.ShowRootCommandHelp(cmd)
		},
		Commands: []*cli.Command{
			serveCommand(env, nil),
			migrateCommand(env),
			apikeyCommand(env),
			{
				Name:            "applesim",
				Usage:           "run the Apple simulator standalone (flags: orchard applesim -h)",
				SkipFlagParsing: true,
				Action: func(ctx context.Context, cmd *cli.Command) error {
					return applesimCmd(ctx, cmd.Args().Slice(), cmd.Root().Writer, cmd.Root().ErrWriter)
				},
			},
			{
				Name:  "version",
				Usage: "print the version, commit and Go version",
				Action: func(ctx context.Context, cmd *cli.Command) error {
					fmt.Fprint(cmd.Root().Writer, versionText())
					return nil
				},
			},
		},
	}
	// The serve command runs serveFn; loadConfig passes its own to only read the settings.
	root.Commands[0].Action = serveAction(env, func(ctx context.Context, c *Config) error {
		return serveFn(ctx, c, root.Writer, root.ErrWriter)
	})
	conventions(root)
	return root
}

// serveCommand is `orchard serve`; with fn set, its action checks the settings and calls fn.
func serveCommand(env map[string]string, fn func(context.Context, *Config) error) *cli.Command {
	cmd := &cli.Command{
		Name:        "serve",
		Usage:       "run the service (the default command)",
		UsageText:   "orchard [serve] [flags]",
		Description: "Every flag is also its ORCHARD_* environment variable, shown in brackets (flags win).",
		Flags:       serveFlags(env),
	}
	if fn != nil {
		cmd.Action = serveAction(env, fn)
		conventions(cmd)
	}
	return cmd
}

func serveAction(env map[string]string, fn func(context.Context, *Config) error) cli.ActionFunc {
	return func(ctx context.Context, cmd *cli.Command) error {
		cfg, err := configFromCommand(cmd, env)
		if err != nil {
			return err
		}
		return fn(ctx, cfg)
	}
}

// conventions applies the error handling to a command and its subcommands: a usage mistake
// is returned as one line (no help dump; main exits 2), nothing calls os.Exit, and a flag's
// parse error names its setting.
func conventions(cmd *cli.Command) {
	cmd.ExitErrHandler = func(context.Context, *cli.Command, error) {}
	cmd.OnUsageError = func(_ context.Context, c *cli.Command, err error, _ bool) error {
		return &usageError{flagError(err).Error() + " (see " + c.FullName() + " -h)"}
	}
	for _, sub := range cmd.Commands {
		conventions(sub)
	}
}

var (
	flagValueError  = regexp.MustCompile(`^invalid value "(.*)" for flag -([a-z-]+):`)
	sourceValueErr  = regexp.MustCompile(`^could not parse "(.*)" as .* for flag ([a-z-]+):`)
	settingByFlag   = map[string]setting{}
	kindExpectation = map[settingKind]string{kindDuration: "is not a duration such as 30m or 1h", kindBool: "is not true or false"}
)

func init() {
	for _, s := range settings {
		settingByFlag[s.flag] = s
	}
}

// flagError rewords a typed flag's parse error, from the command line or the environment,
// as one line naming the setting: `ORCHARD_SYNC_INTERVAL: "soon" is not a duration such as
// 30m or 1h`.
func flagError(err error) error {
	if err == nil {
		return nil
	}
	m := flagValueError.FindStringSubmatch(err.Error())
	if m == nil {
		m = sourceValueErr.FindStringSubmatch(err.Error())
	}
	if m == nil {
		return err
	}
	s, ok := settingByFlag[m[2]]
	if !ok {
		return err
	}
	if want, ok := kindExpectation[s.kind]; ok {
		return fmt.Errorf("%s: %q %s", s.env, m[1], want)
	}
	return fmt.Errorf("%s: %w", s.env, err)
}

// version is set at link time (-ldflags "-X main.version=v1.2.3"); else the module's version
// from the build info ("(devel)" for a build from a work tree).
var version string

// buildInfo is what `orchard version` prints and the orchard_build_info metric carries.
type buildInfo struct {
	Version, Commit, GoVersion string
	Modified                   bool
}

func readBuildInfo() buildInfo {
	b := buildInfo{Version: version, Commit: "unknown", GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if b.Version == "" {
			b.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Commit = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	if b.Version == "" {
		b.Version = "(devel)"
	}
	return b
}

func versionText() string {
	b := readBuildInfo()
	commit := b.Commit
	if b.Modified {
		commit += " (modified)"
	}
	return fmt.Sprintf("orchard %s\ncommit: %s\ngo: %s %s/%s\n", b.Version, commit, b.GoVersion, runtime.GOOS, runtime.GOARCH)
}
