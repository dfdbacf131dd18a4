package decode

import (
	"fmt"
	"time"

	"github.com/winback/winback/pipeline/event"
)

// eventFromNative maps goavro's native form of a contract record to an
// event, the straightforward way. It is the reference the decoder is tested
// and benchmarked against; it does not validate.
func eventFromNative(k event.Kind, m map[string]any) (event.Event, error) {
	ev := event.Event{Kind: k}
	var ok bool
	str := func(name string) string {
		s, isStr := m[name].(string)
		ok = ok && isStr
		return s
	}
	ok = true
	ev.EventID = str("event_id")
	ev.CustomerID = str("customer_id")
	tm, isTime := m["event_time"].(time.Time)
	ok = ok && isTime
	ev.Time = tm.UnixMilli()
	typ := str("type")
	switch k {
	case event.KindOrder:
		ev.OrderType, _ = event.ParseOrderType(typ)
		ev.OrderID = str("order_id")
		ev.Amount, _ = m["amount"].(float64)
		ev.Currency = str("currency")
		items, _ := m["items"].(int32)
		ev.Items = items
	case event.KindEmail:
		ev.EmailType, _ = event.ParseEmailType(typ)
		ev.CampaignID = str("campaign_id")
	case event.KindSupport:
		ev.SupportType, _ = event.ParseSupportType(typ)
		ev.TicketID = str("ticket_id")
		ev.Category = str("category")
		ev.Priority, _ = event.ParseTicketPriority(str("priority"))
		ev.CSAT, ev.NPS = score(m["csat"]), score(m["nps"])
	}
	if !ok {
		return ev, fmt.Errorf("record %v lacks a field", m)
	}
	return ev, nil
}

func score(v any) int8 {
	if u, ok := v.(map[string]any); ok {
		if n, ok := u["int"].(int32); ok {
			return int8(n)
		}
	}
	return event.NoScore
}
