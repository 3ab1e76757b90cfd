package applesim

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Main runs the standalone simulator (`orchard applesim [flags]`) until SIGINT or SIGTERM.
// See Run for the flags.
func Main(args []string, stdout io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, args, stdout)
}

// Run parses flags, generates data, prints the token files and URLs, and serves until ctx
// ends. Flags:
//
//	-listen ADDR          address to listen on (default 127.0.0.1:8090; port 0 picks one)
//	-tokens N -apps M -assignments K -seed S -users-fraction F -countries US,GB,…
//	                      generated data (see GenSpec)
//	-token-dir DIR        also write each token file to DIR/<uId>.vpptoken
//	-page-size N -event-delay D -rps N
//	-notification-retry-backoff D -duplicate-notifications
//	-unknown-token-401 -expiration-date-within-15-days -reassociate-fails-9616
//	-disassociate-missing-fails-9619 -delta-reports-removals -assets-reject-since-version-id
//	                      the doc/apple-api.md §15 switches of Options
func Run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("applesim", flag.ContinueOnError)
	fs.SetOutput(stdout)
	listen := fs.String("listen", "127.0.0.1:8090", "address to listen on")
	tokens := fs.Int("tokens", 1, "number of generated tokens (0: none; add them with the control API)")
	apps := fs.Int("apps", 50, "assets per generated token")
	assignments := fs.Int("assignments", 1000, "assignments per generated token")
	seed := fs.Int64("seed", 1, "seed of the data generator")
	usersFraction := fs.Float64("users-fraction", 0.25, "share of user (vs device) assignments; negative: devices only")
	countries := fs.String("countries", "US,GB,DE,FR,CA", "comma-separated countries of the generated tokens, also used for not-sold-in")
	tokenDir := fs.String("token-dir", "", "write each token file to DIR/<uId>.vpptoken")
	pageSize := fs.Int("page-size", 1000, "records per page")
	eventDelay := fs.Duration("event-delay", 2*time.Second, "time before an asynchronous event completes")
	rps := fs.Int("rps", 0, "requests per second per token before 9646/429 (0: unlimited; Apple: 15)")
	backoff := fs.Duration("notification-retry-backoff", 5*time.Second, "wait before the n-th notification retry, times n")
	dup := fs.Bool("duplicate-notifications", false, "deliver every notification twice")
	var o Options
	fs.BoolVar(&o.UnknownTokenHTTP401, "unknown-token-401", false, "answer unknown tokens with 401 instead of 200 (+9622)")
	fs.BoolVar(&o.ExpirationDateOnlyWithin15Days, "expiration-date-within-15-days", false, "send tokenExpirationDate only within 15 days of expiry")
	fs.BoolVar(&o.ReassociateFails9616, "reassociate-fails-9616", false, "fail re-association with 9616")
	fs.BoolVar(&o.DisassociateMissingFails9619, "disassociate-missing-fails-9619", false, "fail disassociation of a missing assignment with 9619")
	fs.BoolVar(&o.DeltaReportsRemovals, "delta-reports-removals", false, "list removed assignments in sinceVersionId deltas")
	fs.BoolVar(&o.AssetsRejectSinceVersionID, "assets-reject-since-version-id", false, "answer 9602 to GET /assets?sinceVersionId")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("applesim: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("applesim: unexpected arguments %q", fs.Args())
	}
	o.PageSize, o.EventDelay, o.RequestsPerSecond = *pageSize, *eventDelay, *rps
	o.NotificationRetryBackoff, o.DuplicateNotifications = *backoff, *dup
	sim := New(o)
	defer sim.Close()

	var cs []string
	for _, c := range strings.Split(*countries, ",") {
		if c = strings.TrimSpace(c); c != "" {
			cs = append(cs, strings.ToUpper(c))
		}
	}
	start := time.Now()
	var gen Generated
	if *tokens > 0 {
		gen = sim.Generate(GenSpec{Tokens: *tokens, AppsPerToken: *apps, AssignmentsPerToken: *assignments, Seed: *seed, Countries: cs, UsersFraction: *usersFraction})
	}
	genTime := time.Since(start)

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("applesim: %w", err)
	}
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(stdout, "applesim: listening on %s\n", base)
	fmt.Fprintf(stdout, "  Apple API base URL:  %s/mdm/v2\n", base)
	fmt.Fprintf(stdout, "  metadata lookup URL: %s/lookup\n", base)
	fmt.Fprintf(stdout, "  control API:         %s/_sim/\n", base)
	fmt.Fprintf(stdout, "generated %d token(s) in %v (seed %d):\n", len(gen.Tokens), genTime.Round(time.Millisecond), *seed)
	for i, g := range gen.Tokens {
		fmt.Fprintf(stdout, "token %d: uId=%s org=%q location=%q country=%s assets=%d assignments=%d (devices %d, users %d)\n",
			i+1, g.UID, g.OrgName, g.LocationName, g.Country, g.Assets, g.Assignments, g.DeviceAssignments, g.UserAssignments)
		if *tokenDir != "" {
			path := filepath.Join(*tokenDir, g.UID+".vpptoken")
			if err := os.WriteFile(path, []byte(g.TokenFile), 0o600); err != nil {
				ln.Close()
				return fmt.Errorf("applesim: writing token file: %w", err)
			}
			fmt.Fprintf(stdout, "  file: %s\n", path)
		}
		fmt.Fprintf(stdout, "  %s\n", g.TokenFile)
	}

	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err := <-serveErr:
		return fmt.Errorf("applesim: serving: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("applesim: shutting down: %w", err)
	}
	return nil
}
