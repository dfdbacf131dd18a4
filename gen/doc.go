// Package gen generates realistic synthetic traffic for winback's three
// input topics (orders, email-events, support-events), with the ground
// truth planted in it: which customers should get which win-back trigger,
// and roughly when. `winback gen`, the tests and the benchmarks use it.
//
// # Determinism
//
// New(cfg) plans every customer; Each streams the records in
// non-decreasing event-time order across the three topics. The same Config
// gives the same records, byte for byte, on every call and every machine:
// every customer draws from its own seeded PCG streams (plan, order times,
// order contents, e-mail, support), and ties in event time keep a fixed
// order. Each simulates one day of all customers at a time, so memory is
// one day of events plus a small state per customer.
//
// Ids: customers c000001…; events o-<customer>-<n> (orders), e-<customer>-<n>
// (e-mail), s-<customer>-<n> (support), x-<customer>-<n> (malformed);
// orders ord-<customer>-<nnnn>; tickets t-<customer>-<n>; campaigns
// cmp-<nnnn>. Currencies: EUR 55%, USD 30%, GBP 15%, one per customer.
//
// # What every customer does
//
// E-mail: two campaigns a week go to every subscribed customer (a
// newsletter on the second day of each week at about 09:00, a promotion on
// the fifth at about 17:00), each as SENT then DELIVERED a few seconds
// later, then OPENED (hours later) and CLICKED by the customer's
// propensity: 40–60% of e-mails opened, 15–35% of opens clicked. Opens
// follow the propensity closely (error diffusion from a random phase), so a
// steady customer's 30-day open rate stays within one e-mail of their norm.
// New customers and one-time buyers get e-mails from their first order on.
//
// Orders: rhythm buyers' k-th order falls near base + k·interval at their
// habitual hour (the jitter does not accumulate); amounts are log-normal
// around a personal median (8–400, median 45). 2% of orders are partly
// refunded 3–14 days later (at most 35% of the order, 15% for monthly
// buyers), never enough to make spend fall by the decline threshold.
//
// Support: a rare background ticket (at least 45 days apart, about 265 days
// on average) in delivery, billing, product or account; LOW or NORMAL
// priority; OPENED, an agent's UPDATED hours later, RESOLVED within 2.2
// days (well inside the 72 h SLA), with CSAT 4–5 (55%) and NPS 8–10 (20%).
// No background ticket falls within 30 days of a planted one.
//
// # Archetypes and their truth
//
// Truth (one per customer, Generator.Truth) lists in Expect the triggers a
// correct engine must emit, each with From (the earliest event time the
// signal can hold) and By (the time by which it holds with margin), and in
// Allow the reasons it may or may not emit (side effects of the planted
// behaviour, or cases the thresholds leave open). Settled is when the
// customer's rhythm becomes knowable (their 4th order): a PURCHASE_LAPSE
// before it is the cohort's call (Truth.AllowsAt). A trigger with any
// other reason is a false positive. The default shares are in DefaultMix.
//
// The truth is planted against pipeline/lapse's default thresholds
// (model.go, Thresholds): a lapse after twice the usual interval (the
// median of the last intervals, once 4 orders are in), a spend decline
// when 90-day spend is under half the 90 days before, an engagement
// decline when the 30-day open rate is under half the baseline (and
// unlikely by chance), friction at 3 tickets in 30 days, a reopen, a
// complaint or a ticket open past 72 h, low satisfaction at CSAT <= 2 or
// NPS <= 6. Each archetype stays well clear of the thresholds it must not
// cross and well past those it must:
//
//   - steady_weekly, steady_biweekly: every 7 or 14 days (±5% per
//     customer), each order within ±7.5% of its slot, amount spread σ 0.2.
//     steady_monthly: every 27–28.5 days, within ±4% of the slot, σ 0.08:
//     a tight habit, so that every 90-day window holds three or four of
//     their orders, never two, and the 90-day spend never falls near half
//     by chance (with the weekly buyers' spread it would, and a correct
//     SPEND_DECLINE would fire). For every steady buyer the longest gap is
//     under 1.5× the interval, the 90-day spend stays above 0.55 of the 90
//     days before at every order, and the 30-day open rate near the norm.
//     MustNotTrigger: any trigger is an error.
//   - seasonal: 3–5 orders within ±20 days of one season a year (early
//     December, July, March or September), nothing in between. A year of
//     data cannot teach an annual rhythm, so PURCHASE_LAPSE and
//     SPEND_DECLINE are allowed, not expected, and they are not in the
//     must-not set.
//   - lapser: a steady rhythm for at least 7 orders, then silence to the
//     end; the silence is 4–7 intervals, at least twice the lapse
//     threshold's two intervals. LapseStart is the last order. Expects
//     PURCHASE_LAPSE; allows SPEND_DECLINE (a long silence is one).
//   - returner: 7–9 intervals of rhythm, silence of 4–5.5 intervals, then
//     the same rhythm again from ReturnAt to the end. Expects PURCHASE_LAPSE
//     and then RECOVERED; allows SPEND_DECLINE.
//   - email_disengager: still buying; open propensity 45–60% falls to 5%
//     over 10 days starting 130 days before the end, so the last 120 days
//     hold about one open in 20 e-mails. Expects ENGAGEMENT_DECLINE within
//     125 days of the start of the fade (the sequential test needs 15–25
//     unopened e-mails; docs/signals.md).
//   - unsubscriber: at a campaign between 35% and 85% of the span, opens
//     and UNSUBSCRIBED (70%) or COMPLAINED without opening (30%); no e-mail
//     after. bouncer: the same, with a hard BOUNCED instead of DELIVERED.
//     Expect EMAIL_UNSUBSCRIBED / EMAIL_BOUNCED within a day of that
//     campaign; allow ENGAGEMENT_DECLINE (no more deliveries to judge).
//   - support_friction: 3–5 tickets opened within 18 days, HIGH or URGENT
//     mostly, one of them a complaint, at least one reopened; CSAT 3 or
//     none (so no LOW_SATISFACTION). Expects SUPPORT_FRICTION by the third
//     ticket.
//   - low_satisfaction: one ticket, resolved within 2.2 days with CSAT 1–2
//     (60%) or NPS 0–6 (40%). Expects LOW_SATISFACTION when it is resolved.
//   - spend_decliner: weekly or biweekly rhythm unchanged; from 120 days
//     before the end every order is 12–22% of the usual amount, so at the
//     last orders the 90-day spend is about a fifth to a third of the 90
//     before. Expects SPEND_DECLINE.
//   - new_customer: 1–3 orders 5–9 days apart, the last within 6 days of
//     the end: no silence of theirs reaches twice even a weekly cohort
//     interval. Expects nothing.
//   - one_time_buyer: one order between 5% and 50% of the span, low open
//     propensity (10–30%). Allows PURCHASE_LAPSE and SPEND_DECLINE (one
//     order teaches no rhythm).
//
// When the span (Days) is too short for an archetype's plan (a lapser
// needs history and a long silence, a spend decliner 300 days, a
// disengager 190), the generator picks a shorter rhythm if one fits, and
// otherwise moves the reason from Expect to Allow.
//
// pipeline/lapse's scenario test runs a year of 3000 customers through the
// engine and checks precision and recall per reason against this truth.
//
// # Defective records
//
// MalformedShare of all records are malformed, each next to a valid record
// of the same customer and time: JSON cut off mid-way, an HTML 502 page,
// 0x00 and less than the 5-byte Confluent header, 0x00 and a schema id no
// registry has (above 10^9), JSON without customer_id, an order with a
// negative amount, a type symbol not in the contract, CSAT 9, event_time
// in 9999, an empty value, event_id as a number. MalformedKind names each;
// MalformedReason gives the pipeline/decode reason it must be rejected
// with. DuplicateShare of all records repeat the record just before them
// (same event_id), as a retrying producer does. Neither changes the valid
// stream: the same Config with other shares gives the same valid records.
//
// # Producing
//
// Produce sends the records to Kafka, keyed by customer_id, encoded as
// Confluent-framed Avro (codec.EventEncoder), JSON (codec.AppendEventJSON)
// or both alternately; malformed records go raw. It leaves partitioning to the
// client, whose default partitioner hashes keys with murmur2 like Kafka's
// Java client, so the three topics are co-partitioned by customer_id.
//
// Event times are those of the configured span, which may lie in the
// future of the wall clock (the default span is 2026): a decoder that
// bounds event_time by the wall clock rejects those, so set Start in the
// past when feeding a live pipeline.
//
// # JSON lines
//
// WriteJSONL writes one record per line (for `winback backtest --file` and
// for kcat): the valid records and duplicates in stream order, malformed
// records left out. Each line is a JSON object whose first field is
// "topic" (the input topic name, DefaultTopics unless WriteJSONLTopics
// names others), followed by the event's fields exactly as
// codec.AppendEventJSON writes them:
//
//	{"topic":"orders","event_id":"o-c000001-1","customer_id":"c000001","event_time":1767687155395,"type":"PLACED","order_id":"ord-c000001-0001","amount":21.15,"currency":"GBP","items":1}
//
// A line is thus itself a valid JSON value for its topic (decoders skip
// the unknown "topic" field). ReadJSONL routes lines back to kinds. To load
// a file into Kafka with kcat, key each line by its customer_id:
//
//	jq -rc 'select(.topic=="orders") | "\(.customer_id)\t\(.)"' traffic.jsonl |
//	    kcat -P -b 127.0.0.1:9092 -t orders -K '\t'
package gen
