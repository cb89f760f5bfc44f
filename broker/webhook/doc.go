// Package webhook is lanyard's sidecar injector: a mutating admission webhook that gives
// every pod annotated lanyard.dev/role the agent and its credential.
//
// For such a pod the injector sets automountServiceAccountToken to false and removes the
// token volume the ServiceAccount admission plugin added before webhooks run; adds a
// projected token volume (audience lanyard, 600 s) that only the agent mounts; adds an
// in-memory emptyDir for the credential; adds the agent as the first init container with
// restartPolicy Always (a native sidecar), whose startup probe on /readyz holds the app
// containers back until a credential exists; and mounts the credential read-only into the
// selected app containers at the service account path.
//
// The broker's CA reaches the agent without any per-namespace object. By default the
// injector copies the CA (public data) into the pod's lanyard.dev/broker-ca annotation and
// projects that annotation into the agent's token volume as ca.crt through the downward
// API, so the agent reads it with its ordinary --broker-ca-file flag. Where the API server
// serves ClusterTrustBundles (GA in Kubernetes 1.37), Config.ClusterTrustBundle projects
// a bundle instead, which lets the CA rotate without recreating pods.
//
// The mutation converges: the injector computes what the pod must look like and patches
// only differences, so a pod it already mutated yields an empty patch, and a reinvocation
// after another webhook added a container only adds what is missing. The names
// lanyard-agent, lanyard-token and lanyard-credential are reserved in injected pods: an
// agent or volume the pod brings under them is replaced whole unless it is exactly the
// injector's, once the API server's defaults are accounted for.
//
// Pods in which another container could reach the agent's token are refused: those with
// shareProcessNamespace or hostPID (the agent runs as the app's user, so /proc would
// expose it), those with an explicit automountServiceAccountToken: true, and those whose
// app containers mount lanyard-token or project a service account token of their own.
//
// Ephemeral containers arrive later, through an UPDATE of the pod's ephemeralcontainers
// subresource (kubectl debug), which the injector also reviews, best on /validate from a
// ValidatingWebhookConfiguration so that it sees the containers after every mutating
// webhook. In an injected pod it refuses a new ephemeral container that mounts
// lanyard-token, that targets lanyard-agent (sharing the agent's process namespace, where
// /proc reaches the token) or that mounts lanyard-credential writable. kubectl exec (a
// CONNECT of pods/exec) is not reviewed: whoever may exec into the agent reaches its token.
//
// An update of the pod itself may still replace the image of any container, lanyard-agent
// included, which would run an image of the updater's choosing with the agent's token. The
// injector, on /validate as well, refuses an update of an injected pod in which
// lanyard-agent differs from the stored one in any field, and admits every other update.
//
// The agent's health server listens on the pod IP (port 8099 by default) because the
// kubelet probes the pod IP, not the agent's loopback default. Jobs complete normally:
// the kubelet stops a native sidecar once the main containers have ended, and the agent
// revokes its credential on that SIGTERM.
//
// The injector never logs a pod spec, which may hold secrets in env values: only the
// namespace, pod name, request UID, role and decision.
package webhook
