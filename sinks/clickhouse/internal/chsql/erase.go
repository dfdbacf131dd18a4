package chsql

import (
	"fmt"
	"strings"
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
		inSample[i] = "position(sample, " + Quote(`"`+id+`"`) + ") > 0"
	}
	cond := fmt.Sprintf(where, strings.Join(quoted, ", "), strings.Join(inSample, " OR "))
	if lightweight {
		return fmt.Sprintf("DELETE FROM %s.%s WHERE %s", db, table, cond)
	}
	return fmt.Sprintf("ALTER TABLE %s.%s DELETE WHERE %s", db, table, cond)
}
