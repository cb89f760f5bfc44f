// Package catalog loads, validates and evaluates the lanyard role catalog: the
// YAML file in which a security team declares which callers may request which
// Kubernetes credentials (see SPEC.md, "Role catalog").
//
// # Loading
//
// Loading is strict. The YAML is converted to JSON and decoded with unknown and
// duplicate fields reported as errors, then every role is validated. All
// problems are collected, each naming the file, the field path (for example
// roles[1].subjects[0].namespaceSelector.matchLabels) and what is wrong, so
// that one run of `lanyard-broker catalog lint` shows everything to fix. A
// value of the wrong type (a number where a string belongs) stops the
// validation of the role, subject or rule that holds it, because the rest of
// that element cannot be trusted; the other roles are still checked.
//
// A file larger than [MaxFileSize] or with more than [MaxRoles] roles is
// refused before or instead of validating it. [Catalog.Encode] writes a
// catalog back with its defaults spelled out; a fuzz test holds that what
// Parse accepts survives that round trip.
//
// # Defaults
//
//   - ttl defaults to [MinTTL] (10m), Kubernetes' shortest token lifetime.
//   - maxTTL defaults to the role's ttl: an agent may ask for more than the
//     default lifetime only when the catalog says so.
//   - grant.namespace has no default: it must be "caller" or a namespace name.
//     A namespace literally named "caller" therefore cannot be a fixed target.
//   - grant.clusterWide defaults to false; grant.audiences to none, which means
//     the API server's own audience.
//   - An empty selector ({}) matches everything, as in Kubernetes.
//
// # Decisions
//
// [Catalog.Decide] tells whether a caller may request a role, and if not, why,
// in words a developer can act on. Namespace and pod labels are fetched through
// [Facts] only when a subject gets far enough to need them, and at most once
// per call.
//
// # Reloading
//
// [Watcher] keeps the current catalog of a file that may change on disk,
// including the symlink swap with which the kubelet updates a mounted
// ConfigMap, and keeps the last good catalog when a new version is invalid.
package catalog
