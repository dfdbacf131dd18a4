package chsql

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf16"
)

// Erasable are the tables that hold a customer's rows, with the condition
// that finds them: customer_daily, customer_history_state and
// trigger_outcome_state (filled by the materialized views
// customer_daily_feed, customer_history_feed and trigger_outcome_*_feed)
// are deleted from separately; a dead letter is the customer's if its key
// is the id or its sample holds the id as a JSON string.
var Erasable = []struct{ Table, Where string }{
	{TableAggregates, "customer_id IN (%[1]s)"},
	{"customer_daily", "customer_id IN (%[1]s)"},
	{"customer_history_state", "customer_id IN (%[1]s)"},
	{"trigger_outcome_state", "customer_id IN (%[1]s)"},
	{TableTriggers, "customer_id IN (%[1]s)"},
	{TableDeadLetters, "key IN (%[1]s) OR %[2]s"},
}

// WhereCustomer finds a customer's rows in customer_aggregates.
const WhereCustomer = "customer_id IN (%[1]s)"

// DeleteSQL returns the statement that deletes the rows of db.table
// matching where for the customers ids: in where, %[1]s stands for the
// list of quoted ids and %[2]s for a test of the sample column for each
// id as a JSON string. With lightweight (23.3+) it is DELETE FROM, else
// ALTER TABLE ... DELETE, a mutation (18.16).
func DeleteSQL(db, table, where string, ids []string, lightweight bool) string {
	quoted := make([]string, len(ids))
	inSample := make([]string, len(ids))
	for i, id := range ids {
		quoted[i] = Quote(id)
		var tests []string
		for _, form := range jsonForms(id) {
			tests = append(tests, "position(sample, "+Quote(`"`+form+`"`)+") > 0")
		}
		inSample[i] = strings.Join(tests, " OR ")
	}
	cond := fmt.Sprintf(where, strings.Join(quoted, ", "), strings.Join(inSample, " OR "))
	if lightweight {
		return fmt.Sprintf("DELETE FROM %s.%s WHERE %s", db, table, cond)
	}
	return fmt.Sprintf("ALTER TABLE %s.%s DELETE WHERE %s", db, table, cond)
}

// jsonForms returns the ways JSON encoders write the string s between
// its quotes: with only the required escapes (", \\ and control
// characters; Go, Java, most), with every non-ASCII character as \\uXXXX
// in lower or upper case hex (Python's json.dumps, Jackson's
// ESCAPE_NON_ASCII), with <, >, &, U+2028 and U+2029 escaped too (Go's
// encoding/json), and with / as \\/ besides (PHP's json_encode). A dead
// letter's sample holds the customer id in one of them, so an erasure
// looks for each.
func jsonForms(s string) []string {
	var forms []string
	for _, f := range []struct{ ascii, upper, html, slash bool }{
		{}, {ascii: true}, {ascii: true, upper: true}, {html: true}, {ascii: true, slash: true},
	} {
		var b strings.Builder
		u := func(r rune) {
			if f.upper {
				fmt.Fprintf(&b, "\\u%04X", r)
			} else {
				fmt.Fprintf(&b, "\\u%04x", r)
			}
		}
		for _, r := range s {
			switch {
			case r == '"' || r == '\\':
				b.WriteByte('\\')
				b.WriteRune(r)
			case r == '\n':
				b.WriteString(`\n`)
			case r == '\r':
				b.WriteString(`\r`)
			case r == '\t':
				b.WriteString(`\t`)
			case r < 0x20:
				u(r)
			case r == '/' && f.slash:
				b.WriteString(`\/`)
			case f.html && (r == '<' || r == '>' || r == '&' || r == 0x2028 || r == 0x2029):
				u(r)
			case f.ascii && r > 0x7f:
				if r > 0xffff {
					hi, lo := utf16.EncodeRune(r)
					u(hi)
					u(lo)
				} else {
					u(r)
				}
			default:
				b.WriteRune(r)
			}
		}
		if form := b.String(); !slices.Contains(forms, form) {
			forms = append(forms, form)
		}
	}
	return forms
}
