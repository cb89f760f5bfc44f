package writer

import (
	"encoding/json"
	"fmt"

	"github.com/lanyard-dev/lanyard/agent/credential"
)

// Kubeconfig returns a kubeconfig for c in YAML.
//
// The token and CA paths are relative; kubectl and client-go resolve them
// against the directory of the kubeconfig file, so the kubeconfig works
// wherever the output directory is mounted (the agent writes to one path and
// an app container usually mounts it at another). The user names a
// tokenFile, not the token itself, so clients re-read the token after each
// rotation instead of keeping the first one.
func Kubeconfig(c credential.Credential) []byte {
	return fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters:
- name: lanyard
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: lanyard
  user:
    tokenFile: %s
contexts:
- name: lanyard
  context:
    cluster: lanyard
    user: lanyard
    namespace: %s
current-context: lanyard
`, quote(c.APIServer), quote(CAFile), quote(TokenFile), quote(c.Namespace))
}

// quote returns s as a double-quoted scalar: a JSON string is valid YAML and
// escapes whatever the broker sent.
func quote(s string) string {
	b, _ := json.Marshal(s) // a string always marshals
	return string(b)
}
