package event

import (
	"fmt"
	"time"
)

// Kind says which input topic an event came from.
type Kind uint8

const (
	KindOrder Kind = iota + 1
	KindEmail
	KindSupport
)

func (k Kind) String() string {
	switch k {
	case KindOrder:
		return "order"
	case KindEmail:
		return "email"
	case KindSupport:
		return "support"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// OrderType is Order.type in the contract.
type OrderType uint8

const (
	OrderPlaced OrderType = iota + 1
	OrderCancelled
	OrderRefunded
)

// EmailType is EmailEvent.type in the contract.
type EmailType uint8

const (
	EmailSent EmailType = iota + 1
	EmailDelivered
	EmailOpened
	EmailClicked
	EmailBounced
	EmailUnsubscribed
	EmailComplained
)

// SupportType is SupportEvent.type in the contract.
type SupportType uint8

const (
	SupportOpened SupportType = iota + 1
	SupportUpdated
	SupportReopened
	SupportResolved
)

// TicketPriority is SupportEvent.priority in the contract.
type TicketPriority uint8

const (
	PriorityLow TicketPriority = iota + 1
	PriorityNormal
	PriorityHigh
	PriorityUrgent
)

var (
	orderTypes   = []string{"", "PLACED", "CANCELLED", "REFUNDED"}
	emailTypes   = []string{"", "SENT", "DELIVERED", "OPENED", "CLICKED", "BOUNCED", "UNSUBSCRIBED", "COMPLAINED"}
	supportTypes = []string{"", "OPENED", "UPDATED", "REOPENED", "RESOLVED"}
	ticketPrios  = []string{"", "LOW", "NORMAL", "HIGH", "URGENT"}
)

func name(names []string, i uint8) string {
	if int(i) < len(names) && i > 0 {
		return names[i]
	}
	return fmt.Sprintf("UNKNOWN(%d)", i)
}

func lookup(names []string, s string) (uint8, bool) {
	for i := 1; i < len(names); i++ {
		if names[i] == s {
			return uint8(i), true
		}
	}
	return 0, false
}

func (t OrderType) String() string      { return name(orderTypes, uint8(t)) }
func (t EmailType) String() string      { return name(emailTypes, uint8(t)) }
func (t SupportType) String() string    { return name(supportTypes, uint8(t)) }
func (p TicketPriority) String() string { return name(ticketPrios, uint8(p)) }

// ParseOrderType maps the contract's symbol to an OrderType.
func ParseOrderType(s string) (OrderType, bool) {
	v, ok := lookup(orderTypes, s)
	return OrderType(v), ok
}

// ParseEmailType maps the contract's symbol to an EmailType.
func ParseEmailType(s string) (EmailType, bool) {
	v, ok := lookup(emailTypes, s)
	return EmailType(v), ok
}

// ParseSupportType maps the contract's symbol to a SupportType.
func ParseSupportType(s string) (SupportType, bool) {
	v, ok := lookup(supportTypes, s)
	return SupportType(v), ok
}

// ParseTicketPriority maps the contract's symbol to a TicketPriority.
func ParseTicketPriority(s string) (TicketPriority, bool) {
	v, ok := lookup(ticketPrios, s)
	return TicketPriority(v), ok
}

// NoScore marks an absent CSAT or NPS (null in the contract).
const NoScore int8 = -1

// Event is one decoded and validated input record. Kind says which of the
// kind-specific fields are set; the others are zero.
type Event struct {
	Kind       Kind
	EventID    string
	CustomerID string
	Time       int64 // event_time, Unix ms UTC

	// Order
	OrderType OrderType
	OrderID   string
	Amount    float64 // currency units, >= 0
	Currency  string  // ISO 4217
	Items     int32

	// Email
	EmailType  EmailType
	CampaignID string

	// Support
	SupportType SupportType
	TicketID    string
	Category    string
	Priority    TicketPriority
	CSAT        int8 // 1–5, or NoScore
	NPS         int8 // 0–10, or NoScore
}

// EventTime returns Time as a time.Time in UTC.
func (e *Event) EventTime() time.Time { return time.UnixMilli(e.Time).UTC() }
