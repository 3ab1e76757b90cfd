package main

// Demo mode (`orchard -demo`): Orchard with simulated Apple data, for trying it out. The Apple
// simulator (apple/applesim) runs in this process on a free loopback port with three generated
// accounts; Orchard's Apple client is pointed at it, Orchard's own address is its public URL
// (so the simulator's notifications reach Orchard), and the three accounts are added through
// the domain service, which queues their first sync.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"orchard/apple"
	"orchard/apple/applesim"
	"orchard/db"
	"orchard/license"
	"orchard/model"
)

// demoDatabase is the demo's database when ORCHARD_DATABASE is not given, so that a demo
// never mixes with real data (its key file is orchard-demo.db.key beside it).
const demoDatabase = "sqlite:orchard-demo.db"

// demoSpec is the demo's data: fixed, so that a restarted demo finds the same tokens, apps
// and assignments (token files also carry their expiry, 31 December of next year).
var demoSpec = applesim.GenSpec{
	Tokens: 3, AppsPerToken: 50, AssignmentsPerToken: 1000, Seed: 5,
	Countries: []string{"US", "GB", "DE"},
}

// demoActor is who adds the demo's accounts, in the audit trail.
var demoActor = license.Actor{Kind: model.ActorSystem, Name: "demo"}

// demoOverrides are the settings -demo sets itself.
var demoOverrides = []string{"ORCHARD_APPLE_URL", "ORCHARD_LOOKUP_URL", "ORCHARD_PUBLIC_URL"}

// demoConfig adjusts the settings for -demo before they are parsed: it refuses the settings
// the demo sets itself when they were given (set holds the settings given by environment or
// flag), and defaults the database to demoDatabase.
func demoConfig(set map[string]bool, vals map[string]*string) error {
	var given []string
	for _, k := range demoOverrides {
		if set[k] {
			given = append(given, k)
		}
	}
	if len(given) > 0 {
		return fmt.Errorf("-demo runs its own Apple simulator and sets %s itself: unset %s, or run without -demo",
			strings.Join(demoOverrides, ", "), strings.Join(given, " and "))
	}
	if !set["ORCHARD_DATABASE"] {
		*vals["ORCHARD_DATABASE"] = demoDatabase
	}
	return nil
}

// demo is a running demo: the simulator and its HTTP server, and Orchard's listener.
type demo struct {
	sim       *applesim.Sim
	srv       *http.Server
	orchard   net.Listener
	url       string // the simulator's root URL
	publicURL string // Orchard's URL, where the simulator sends notifications
	gen       applesim.Generated
	log       *slog.Logger
}

// startDemo opens Orchard's listener (the simulator needs its address), starts the simulator
// with generated data on a free loopback port and points cfg at it.
func startDemo(cfg *Config, log *slog.Logger) (*demo, error) {
	orchard, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("ORCHARD_LISTEN: cannot listen on %s: %w", cfg.Listen, err)
	}
	public, err := demoPublicURL(orchard.Addr())
	if err != nil {
		orchard.Close()
		return nil, err
	}
	sim := applesim.New(applesim.Options{
		EventDelay:               time.Second, // long enough to see assignments PENDING
		NotificationRetryBackoff: 200 * time.Millisecond,
	})
	// Apple advertises 15 requests per second and Orchard's client paces itself to what is
	// advertised; the simulator enforces no limit, so let the demo sync at full speed.
	sim.SetLimits(applesim.Limits{MaxRequestPerSecond: 1000})
	gen := sim.Generate(demoSpec)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		sim.Close()
		orchard.Close()
		return nil, fmt.Errorf("demo: cannot start the Apple simulator: %w", err)
	}
	dm := &demo{
		sim: sim, orchard: orchard, gen: gen, publicURL: public, url: "http://" + ln.Addr().String(),
		log: log.With("component", "demo"),
		srv: &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)},
	}
	go func() { _ = dm.srv.Serve(ln) }()
	cfg.AppleURL = dm.url + "/mdm/v2"
	cfg.LookupURL = dm.url + "/lookup"
	cfg.PublicURL = public
	dm.log.Info("apple simulator started", "url", dm.url, "tokens", len(gen.Tokens))
	return dm, nil
}

// demoPublicURL is Orchard's URL as the simulator reaches it: loopback, since the simulator
// accepts http notification URLs only there.
func demoPublicURL(a net.Addr) (string, error) {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return "", fmt.Errorf("-demo needs a TCP listen address, not %s", a)
	}
	switch {
	case tcp.IP == nil || tcp.IP.IsUnspecified():
		return fmt.Sprintf("http://127.0.0.1:%d", tcp.Port), nil
	case tcp.IP.IsLoopback():
		return "http://" + tcp.String(), nil
	}
	return "", fmt.Errorf("ORCHARD_LISTEN: -demo needs Orchard on loopback or all interfaces (e.g. :8080 or 127.0.0.1:8080), not %s", tcp)
}

// listener is Orchard's listener, opened by startDemo; nil without a demo.
func (dm *demo) listener() net.Listener {
	if dm == nil {
		return nil
	}
	return dm.orchard
}

// Close stops the simulator (and closes Orchard's listener if serve did not get to it).
func (dm *demo) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = dm.srv.Shutdown(ctx)
	_ = dm.sim.Close()
	_ = dm.orchard.Close()
}

// demoAccountName is the display name of a generated account.
func demoAccountName(g applesim.GeneratedToken) string {
	return fmt.Sprintf("%s, %s (%s)", g.OrgName, g.LocationName, g.Country)
}

// addAccounts adds the generated accounts through the domain service (which claims each at
// the simulator, subscribes Orchard to its notifications and queues the first sync), then
// prints what there is to try. Run it once Orchard serves: the simulator sends a test
// notification while an account is added. Accounts already in the database (a demo run
// before on it) are kept: the fresh simulator is told what Apple would remember (the
// notification subscription), the token is renewed if it changed (a new year), and a full
// sync is queued so that the database matches the simulator again.
func (dm *demo) addAccounts(ctx context.Context, d *db.DB, svc *license.Service, stdout io.Writer, database *db.Target, keyCreated bool) error {
	lines := make([]string, 0, len(dm.gen.Tokens))
	for _, g := range dm.gen.Tokens {
		name := demoAccountName(g)
		what := fmt.Sprintf("%d apps and books, %d assignments (%d device, %d user)", g.Assets, g.Assignments, g.DeviceAssignments, g.UserAssignments)
		_, _, err := svc.AddAccount(ctx, demoActor, license.AddAccountInput{Name: name, Token: g.TokenFile})
		var me *model.Error
		switch {
		case err == nil:
			lines = append(lines, fmt.Sprintf("    added    %-44s %s", name, what))
			dm.log.Info("demo account added", "account", name, "uId", g.UID)
			continue
		case errors.As(err, &me) && me.Code == model.CodeDuplicateAccount:
		default:
			if ctx.Err() != nil {
				return nil // shutting down
			}
			return fmt.Errorf("demo: add account %q: %w", name, err)
		}
		note, err := dm.refresh(ctx, d, svc, g)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			dm.log.Warn("demo account not refreshed", "account", name, "error", err)
			note = "could not queue a sync: " + err.Error()
		}
		lines = append(lines, fmt.Sprintf("    present  %-44s %s", name, note))
	}

	fmt.Fprintf(stdout, "\nDemo mode: Apple is simulated in this process (generated data, seed %d).\n", demoSpec.Seed)
	fmt.Fprintf(stdout, "  Apple simulator: %s  (Apple API %s/mdm/v2, control API %s/_sim/)\n", dm.url, dm.url, dm.url)
	fmt.Fprintf(stdout, "  Database:        %s\n", database)
	fmt.Fprintf(stdout, "  Accounts (the first sync takes a few seconds):\n%s\n", strings.Join(lines, "\n"))
	if !keyCreated {
		fmt.Fprintf(stdout, "  Use the ADMIN key printed when this database was new; or make one:\n"+
			"    go run . apikey create -database %s -name demo -role ADMIN\n", database)
	}
	fmt.Fprint(stdout, "\nTry in GraphiQL (Headers: {\"Authorization\": \"Bearer <the ADMIN key>\"}):\n\n")
	fmt.Fprint(stdout, `  # The accounts, their sync and what they hold
  { accounts { nodes { name countryCode syncStatus dataAge licensePools { totalCount } licenseAssignments { totalCount } } } }

  # What they bought: paid and free apps, books, custom (B2B) apps
  { licensePools(first: 20) { nodes { account { countryCode } app { adamId name kind isB2B } unlimited totalCount assignedCount availableCount } } }
`)
	if adamID := dm.exampleApp(); adamID != "" {
		fmt.Fprintf(stdout, `
  # Push a device and give it a license: PENDING until Apple confirms (about a second), then ASSIGNED
  mutation { upsertDevices(input: { devices: [{ serialNumber: "%[1]s", platform: IOS, osVersion: "17.4", countryCode: "%[2]s" }] }) { userErrors { message } }
    assignLicense(input: { adamId: "%[3]s", kind: DEVICE, target: { serialNumber: "%[1]s" } }) { assignment { status app { name } account { name } } userErrors { code message } } }
  { device(serialNumber: "%[1]s") { assignments { nodes { status app { name } account { name } } } } }
`, demoSerial, dm.gen.Tokens[0].Country, adamID)
	}
	fmt.Fprintln(stdout)
	return nil
}

// demoSerial is the device of the printed assign example.
const demoSerial = "DEMO0001"

// exampleApp picks the app of the printed assign example: a paid app that only the first
// account bought, assignable to devices, with licenses left ("" if there is none).
func (dm *demo) exampleApp() string {
	others := map[string]bool{}
	for _, g := range dm.gen.Tokens[1:] {
		for _, a := range dm.sim.AssetStates(g.TokenFile) {
			others[a.AdamID] = true
		}
	}
	for _, a := range dm.sim.AssetStates(dm.gen.Tokens[0].TokenFile) {
		if a.ProductType == "App" && !a.Unlimited && a.DeviceAssignable && a.Available > 0 && !others[a.AdamID] {
			return a.AdamID
		}
	}
	return ""
}

// refresh brings an account that a previous demo added up to date with the fresh simulator.
func (dm *demo) refresh(ctx context.Context, d *db.DB, svc *license.Service, g applesim.GeneratedToken) (string, error) {
	a, err := d.LiveAccountByLocation(ctx, g.UID)
	if err != nil {
		return "", err
	}
	// The simulator keeps its state in memory: restore the subscription a previous demo made,
	// as Apple would have kept it.
	if a.NotificationsEnabled {
		if secret, err := svc.NotificationSecret(a); err == nil && secret != "" {
			dm.sim.SetNotificationConfig(g.TokenFile, fmt.Sprintf("%s/apple/notifications/%d", dm.publicURL, a.ID), secret, license.NotificationTypes)
		}
	}
	// A token file carries its expiry (31 December of next year): in a new year the simulator
	// generates a new one for the same location. Renewing queues a full sync too.
	if tok, err := apple.ParseToken([]byte(g.TokenFile), time.Now()); err == nil && tok.Fingerprint() != a.TokenFingerprint {
		if _, err := svc.RenewAccountToken(ctx, demoActor, a.ID, g.TokenFile); err != nil {
			return "", fmt.Errorf("renew its token: %w", err)
		}
		return "already in the database; its token was renewed and a full sync is queued", nil
	}
	if _, err := svc.SyncAccount(ctx, demoActor, a.ID, model.SyncFull); err != nil {
		return "", err
	}
	return "already in the database; a full sync is queued", nil
}
