// Command gateway is the platform's edge: API keys, rate limits, connection
// shedding, and a proxy with circuit breakers to the services.
//
//	gateway                               serve (configuration from the environment)
//	gateway keygen --id ID --role ROLE    print a new API key and its API_KEYS entry
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	platformcfg "github.com/provcred/platform/config"
	"github.com/provcred/platform/service"

	"github.com/provcred/gateway/internal/app"
	"github.com/provcred/gateway/internal/auth"
	"github.com/provcred/gateway/internal/config"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "keygen" {
		os.Exit(keygen(os.Args[2:]))
	}
	service.MainWith(app.Service, nil, run)
}

func run(ctx context.Context) error {
	cfg := platformcfg.MustLoad[config.Config]()
	deps, err := service.Init(ctx, app.Service, cfg.Base, nil)
	if err != nil {
		return err
	}
	g, err := app.New(&cfg, app.Deps{Logger: deps.Log, Tracer: deps.Tracer, Metrics: deps.Metrics,
		Signer: deps.Internal})
	if err != nil {
		return err
	}
	deps.Log.Info("gateway configured", "api_keys", len(cfg.Keys), "credential_url", cfg.CredentialURL,
		"stats_url", cfg.StatsURL, "chat_url", cfg.ChatURL)
	return deps.Serve(ctx, g.Server, cfg.HTTPAddr, g.Close)
}

// keygen prints a fresh key (to give the client, once) and the entry to add
// to API_KEYS / API_KEYS_FILE (which holds only the hash).
func keygen(args []string) int {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	id := fs.String("id", "", "key id (shown as the actor in the audit log)")
	role := fs.String("role", "", "reader, operator or admin")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "keygen: unknown argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	r, err := auth.ParseRole(*role)
	if err != nil {
		fmt.Fprintln(os.Stderr, "keygen: --role:", err)
		return 2
	}
	secret, entry, err := auth.Generate(*id, r)
	if err != nil {
		fmt.Fprintln(os.Stderr, "keygen:", err)
		return 2
	}
	fmt.Printf("API_KEY=%s\nAPI_KEYS_ENTRY=%s\n", secret, entry)
	return 0
}
