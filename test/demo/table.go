package main

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// row is one line of the demo's result table.
type row struct {
	role string
	what string
	want string
	got  string
	ok   bool
}

// printTable writes the rows as an aligned table a person can read at a glance.
func printTable(w io.Writer, rows []row) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ROLE\tWHAT THE POD TRIED\tEXPECTED\t\tRESULT")
	for _, r := range rows {
		mark := "ok"
		if !r.ok {
			mark = "UNEXPECTED"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.role, r.what, r.want, mark, r.got)
	}
	_ = tw.Flush()
}
