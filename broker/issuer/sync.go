package issuer

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"time"

	vault "github.com/hashicorp/vault/api"
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/lanyard-dev/lanyard/broker/catalog"
)

// Operations of a Change.
const (
	OpCreate = "create"
	OpUpdate = "update"
	OpDelete = "delete"
)

// Change is one write Sync made, or would make in a dry run.
type Change struct {
	Op   string // create|update|delete
	Role string // lanyard-x
}

// String is "create lanyard-x".
func (c Change) String() string { return c.Op + " " + c.Role }

// syncCallTimeout bounds each call of a sync.
const syncCallTimeout = 15 * time.Second

// Sync makes lanyard-* roles on the mount equal the catalog; touches
// nothing else. With dryRun it reads but writes nothing. It returns the
// changes sorted by role; on error, those made before it.
func (i *Issuer) Sync(ctx context.Context, cat *catalog.Catalog, dryRun bool) ([]Change, error) {
	if err := i.Ready(); err != nil {
		return nil, err
	}
	existing, err := i.listRoles(ctx)
	if err != nil {
		return nil, err
	}
	want := make(map[string]map[string]any, len(cat.Roles))
	for k := range cat.Roles {
		want[RoleName(cat.Roles[k].Name)] = RoleParams(&cat.Roles[k])
	}
	plan, err := i.plan(ctx, existing, want)
	if err != nil {
		return nil, err
	}
	if dryRun {
		return plan, nil
	}
	for n, c := range plan {
		if err := i.apply(ctx, c, want[c.Role]); err != nil {
			return plan[:n], err
		}
		i.log.Info("Synced Vault role", logOp, c.Op, logVaultRole, c.Role)
	}
	return plan, nil
}

// plan compares the lanyard roles on the mount with want.
func (i *Issuer) plan(
	ctx context.Context,
	existing []string,
	want map[string]map[string]any,
) ([]Change, error) {
	var plan []Change
	for _, name := range existing {
		if _, ok := want[name]; !ok {
			plan = append(plan, Change{Op: OpDelete, Role: name})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		if !slices.Contains(existing, name) {
			plan = append(plan, Change{Op: OpCreate, Role: name})
			continue
		}
		have, err := i.readRole(ctx, name)
		if err != nil {
			return nil, err
		}
		if !sameRole(have, want[name]) {
			plan = append(plan, Change{Op: OpUpdate, Role: name})
		}
	}
	slices.SortFunc(plan, func(a, b Change) int {
		return strings.Compare(a.Role, b.Role)
	})
	return plan, nil
}

func (i *Issuer) apply(ctx context.Context, c Change, params map[string]any) error {
	ctx, cancel := context.WithTimeout(ctx, syncCallTimeout)
	defer cancel()
	path := i.rolePath(c.Role)
	var resp *vault.Response
	var err error
	if c.Op == OpDelete {
		resp, err = i.client.Logical().DeleteRawWithContext(ctx, path)
	} else {
		body, merr := json.Marshal(params)
		if merr != nil {
			return fmt.Errorf("role %s: %w", c.Role, merr)
		}
		resp, err = i.client.Logical().WriteRawWithContext(ctx, path, body)
	}
	closeBody(resp)
	if err != nil {
		return fmt.Errorf("%s role %s: %w", c.Op, c.Role, classify("roles", err))
	}
	return nil
}

func (i *Issuer) rolePath(vaultRole string) string {
	return i.cfg.Mount + "/roles/" + vaultRole
}

// listRoles returns the lanyard roles on the mount, sorted. The list Vault
// answers holds every role name of the mount; the others are dropped here.
func (i *Issuer) listRoles(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, syncCallTimeout)
	defer cancel()
	resp, err := i.client.Logical().ReadRawWithDataWithContext(ctx, i.cfg.Mount+"/roles",
		map[string][]string{"list": {"true"}})
	defer closeBody(resp)
	if resp != nil && resp.StatusCode == http.StatusNotFound {
		return nil, nil // no roles at all
	}
	if err != nil {
		return nil, classify("list roles", err)
	}
	secret, err := vault.ParseSecret(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("vault list roles: read answer: %w", err)
	}
	var names []string
	if secret != nil {
		keys, _ := secret.Data["keys"].([]any)
		for _, k := range keys {
			if name, ok := k.(string); ok && strings.HasPrefix(name, RolePrefix) {
				names = append(names, name)
			}
		}
	}
	slices.Sort(names)
	return names, nil
}

func (i *Issuer) readRole(ctx context.Context, name string) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(ctx, syncCallTimeout)
	defer cancel()
	resp, err := i.client.Logical().ReadRawWithContext(ctx, i.rolePath(name))
	defer closeBody(resp)
	if err != nil {
		return nil, classify("read role "+name, err)
	}
	secret, err := vault.ParseSecret(resp.Body)
	if err != nil || secret == nil {
		return nil, fmt.Errorf("vault read role %s: unreadable answer", name)
	}
	return secret.Data, nil
}

// roleSpec is a role in one comparable form, whether it comes from
// RoleParams or from Vault, which answers TTLs as float seconds, lists as
// null when empty and lower-cases namespaces.
type roleSpec struct {
	Namespaces, Audiences                        []string
	Selector, ServiceAccount, RoleName, RoleType string
	Rules, NameTemplate                          string
	DefaultTTL, MaxTTL                           int64
	Labels, Annotations                          map[string]string
}

// sameRole tells whether the role Vault has equals the one wanted.
func sameRole(have, want map[string]any) bool {
	a, err := specOf(have)
	if err != nil {
		return false
	}
	b, err := specOf(want)
	if err != nil {
		return false
	}
	return reflect.DeepEqual(a, b)
}

func specOf(m map[string]any) (roleSpec, error) {
	// A JSON round trip gives RoleParams' Go values and Vault's decoded
	// JSON the same types.
	data, err := json.Marshal(m)
	if err != nil {
		return roleSpec{}, err
	}
	var raw struct {
		Namespaces     []string          `json:"allowed_kubernetes_namespaces"`
		Selector       string            `json:"allowed_kubernetes_namespace_selector"`
		DefaultTTL     float64           `json:"token_default_ttl"`
		MaxTTL         float64           `json:"token_max_ttl"`
		Audiences      []string          `json:"token_default_audiences"`
		ServiceAccount string            `json:"service_account_name"`
		RoleName       string            `json:"kubernetes_role_name"`
		RoleType       string            `json:"kubernetes_role_type"`
		Rules          string            `json:"generated_role_rules"`
		NameTemplate   string            `json:"name_template"`
		Labels         map[string]string `json:"extra_labels"`
		Annotations    map[string]string `json:"extra_annotations"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return roleSpec{}, err
	}
	return roleSpec{
		Namespaces:     sortedLower(raw.Namespaces),
		Audiences:      audiences(raw.Audiences),
		Selector:       raw.Selector,
		ServiceAccount: raw.ServiceAccount,
		RoleName:       raw.RoleName,
		RoleType:       strings.ToLower(raw.RoleType),
		Rules:          normalRules(raw.Rules),
		NameTemplate:   raw.NameTemplate,
		DefaultTTL:     int64(raw.DefaultTTL),
		MaxTTL:         int64(raw.MaxTTL),
		Labels:         nonNil(raw.Labels),
		Annotations:    nonNil(raw.Annotations),
	}, nil
}

func sortedLower(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		out = append(out, strings.ToLower(s))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// normalRules rewrites a JSON rules document canonically; anything else
// (YAML written by hand) is kept as is and so differs, which a write fixes.
func normalRules(doc string) string {
	var rules struct {
		Rules []rbacv1.PolicyRule `json:"rules"`
	}
	if doc == "" || json.Unmarshal([]byte(doc), &rules) != nil {
		return doc
	}
	return rulesDocument(rules.Rules)
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
