// Package issuer mints Kubernetes credentials through Vault's Kubernetes
// secrets engine, revokes them, and keeps the engine's lanyard-* roles equal
// to the role catalog.
//
// The broker logs in to Vault itself (Kubernetes auth method, or a token
// file) and holds one Vault token for all callers; callers never see it.
// Every creds call is made at most once: a retried call that had in fact
// succeeded would mint a second credential that nobody holds and that lives
// until its lease expires.
package issuer

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	vault "github.com/hashicorp/vault/api"
)

// Defaults of Config.
const (
	DefaultMount       = "kubernetes"
	DefaultAuthMount   = "kubernetes"
	DefaultMaxInFlight = 8
	// DefaultTimeout is long because Vault's engine queues its Kubernetes
	// calls at about 5 per second: under load, waiting is normal.
	DefaultTimeout = 60 * time.Second
)

// Auth methods of Config.Auth.
const (
	AuthKubernetes = "kubernetes"
	AuthToken      = "token"
)

// Config says how to reach and log in to Vault.
type Config struct {
	Addr        string        // Vault address
	Mount       string        // secrets engine mount, default "kubernetes"
	Auth        string        // "kubernetes" | "token"
	AuthMount   string        // default "kubernetes"
	Role        string        // Vault auth role for kubernetes auth
	JWTFile     string        // broker's own SA token file, re-read at each login (kubernetes auth)
	TokenFile   string        // Vault token file (token auth), re-read when it changes
	CACertFile  string        // optional Vault TLS CA
	MaxInFlight int           // cap on concurrent Vault creds and revoke calls; default 8
	Timeout     time.Duration // per creds call; default 60s (Vault's engine queues at ~5 req/s)
	Logger      *slog.Logger
}

// Issuer talks to Vault for the broker. Its methods are safe for concurrent
// use; Run must be running for Issue, Revoke and Sync to have a token.
type Issuer struct {
	cfg    Config
	client *vault.Client
	log    *slog.Logger
	clock  clock
	sem    chan struct{}

	mu    sync.Mutex
	login loginState
}

// loginState is what Ready reports.
type loginState struct {
	ok      bool
	expires time.Time // zero when the token does not expire
	err     error     // why the last login or renewal failed
}

// New checks cfg, fills in defaults and builds the Vault client. It does not
// contact Vault: Run logs in.
func New(cfg Config) (*Issuer, error) {
	cfg, err := withDefaults(cfg)
	if err != nil {
		return nil, err
	}
	client, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	return &Issuer{
		cfg:    cfg,
		client: client,
		log:    cfg.Logger,
		clock:  realClock{},
		sem:    make(chan struct{}, cfg.MaxInFlight),
	}, nil
}

func withDefaults(cfg Config) (Config, error) {
	if cfg.Addr == "" {
		return cfg, errors.New("vault address is required")
	}
	cfg.Mount = defaultString(cfg.Mount, DefaultMount)
	cfg.AuthMount = defaultString(cfg.AuthMount, DefaultAuthMount)
	cfg.Auth = defaultString(cfg.Auth, AuthKubernetes)
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	switch cfg.Auth {
	case AuthKubernetes:
		if cfg.Role == "" || cfg.JWTFile == "" {
			return cfg, errors.New("kubernetes auth needs a vault role and a service account token file")
		}
	case AuthToken:
		if cfg.TokenFile == "" {
			return cfg, errors.New("token auth needs a vault token file")
		}
	default:
		return cfg, fmt.Errorf("vault auth %q: want kubernetes or token", cfg.Auth)
	}
	return cfg, nil
}

func defaultString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// newClient builds a Vault client that never retries and does not let the
// VAULT_* environment change where it connects, whether it verifies TLS,
// which token it sends or whether answers come wrapped.
func newClient(cfg Config) (*vault.Client, error) {
	vc := vault.DefaultConfig()
	if vc.Error != nil {
		return nil, fmt.Errorf("vault client config: %w", vc.Error)
	}
	vc.Address = cfg.Addr
	vc.AgentAddress = ""
	// Vault's client retries 5xx answers and connection errors twice by
	// default. A retried creds call whose first attempt reached Vault would
	// mint a second, orphaned credential, so this client never retries;
	// whoever asked for a credential decides whether to ask again.
	vc.MaxRetries = 0
	// Per-call contexts are shorter; this bounds anything else.
	vc.Timeout = cfg.Timeout + 5*time.Second
	vc.DisableRedirects = true
	vc.Limiter = nil
	if err := vc.ConfigureTLS(&vault.TLSConfig{CACert: cfg.CACertFile}); err != nil {
		return nil, fmt.Errorf("vault TLS (CA %q): %w", cfg.CACertFile, err)
	}
	client, err := vault.NewClient(vc)
	if err != nil {
		return nil, fmt.Errorf("vault client: %w", err)
	}
	// NewClient takes VAULT_TOKEN from the environment; the broker uses
	// only the token it logged in with.
	client.ClearToken()
	// VAULT_WRAP_TTL would make Vault answer creds with a wrapping token.
	client.SetWrappingLookupFunc(func(string, string) string { return "" })
	return client, nil
}

// Ready returns nil once logged in with a token that has not expired.
func (i *Issuer) Ready() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	switch {
	case !i.login.ok && i.login.err != nil:
		return fmt.Errorf("%w: %w", ErrUnavailable, i.login.err)
	case !i.login.ok:
		return errNotLoggedIn
	case !i.login.expires.IsZero() && !i.clock.Now().Before(i.login.expires):
		return fmt.Errorf("%w: vault token expired", ErrUnavailable)
	}
	return nil
}

func (i *Issuer) setLoggedIn(expires time.Time) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.login = loginState{ok: true, expires: expires}
}

func (i *Issuer) setLoginFailed(err error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.login = loginState{err: err}
}

// clock is time, injected so that tests never wait for it.
type clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
