package brokertest

import "fmt"

// Roles of Catalog.
const (
	// RolePodReader lets the caller list and get pods in its own namespace.
	RolePodReader = "pod-reader"
	// RoleDenied names a role the caller of Catalog is not a subject of.
	RoleDenied = "secret-reader"
	// nobody is the only subject of RoleDenied; no test creates it.
	nobody = "lanyard-nobody"
)

// Catalog returns a role catalog in which serviceAccount of namespace may
// request RolePodReader (get and list pods in the caller's namespace, ttl
// 10m, maxTTL 1h) but not RoleDenied, whose only subject is an account no
// test uses.
func Catalog(namespace, serviceAccount string) string {
	return fmt.Sprintf(`apiVersion: lanyard.dev/v1alpha1
kind: RoleCatalog
roles:
  - name: %[3]s
    description: List and get pods in the caller's own namespace
    subjects:
      - namespace: %[1]s
        serviceAccounts: [%[2]s]
    grant:
      namespace: caller
      rules:
        - apiGroups: [""]
          resources: [pods]
          verbs: [get, list]
    ttl: 10m
    maxTTL: 1h
  - name: %[4]s
    description: Read secrets; granted to an account no test uses
    subjects:
      - namespace: %[1]s
        serviceAccounts: [%[5]s]
    grant:
      namespace: caller
      rules:
        - apiGroups: [""]
          resources: [secrets]
          verbs: [get]
    ttl: 10m
    maxTTL: 1h
`, namespace, serviceAccount, RolePodReader, RoleDenied, nobody)
}
