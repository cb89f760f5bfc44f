package catalog

import (
	"fmt"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a catalog file.
type Problem struct {
	Source  string // file the problem is in
	Path    string // field path such as roles[2].grant; "" for the file as a whole
	Message string // what is wrong, in words that say what to change
}

// String formats the problem as lint prints it, for example
// "catalog.yaml: roles[2].grant: exactly one of rules, clusterRole, role, serviceAccount".
func (p Problem) String() string {
	if p.Path == "" {
		return p.Source + ": " + p.Message
	}
	return p.Source + ": " + p.Path + ": " + p.Message
}

// Error reports every problem found in a catalog, not just the first.
type Error struct {
	Problems []Problem
}

// Error joins the problems on one line, so that it reads well in a log.
func (e *Error) Error() string {
	if len(e.Problems) == 1 {
		return "invalid catalog: " + e.Problems[0].String()
	}
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return fmt.Sprintf("invalid catalog, %d problems: %s",
		len(e.Problems), strings.Join(parts, "; "))
}

// problems collects what is wrong with one file while it is checked.
type problems struct {
	source string
	list   []Problem
}

func (p *problems) add(path, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.list = append(p.list, Problem{Source: p.source, Path: path, Message: msg})
}

// err is nil when nothing was found, so that callers never see a typed nil.
func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	return &Error{Problems: p.list}
}

// field appends a field name to a path.
func field(path, name string) string {
	if path == "" {
		return name
	}
	if name == "" {
		return path
	}
	return path + "." + name
}

// index appends a list index to a path.
func index(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}
