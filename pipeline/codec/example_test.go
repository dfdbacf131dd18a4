package codec_test

import (
	"context"
	"fmt"

	"github.com/winback/winback/pipeline/codec"
	"github.com/winback/winback/pipeline/event"
)

func ExampleTriggerEncoder_Encode() {
	enc, err := codec.NewTriggerEncoder(context.Background(), nil, "winback-triggers", codec.FormatJSON)
	if err != nil {
		panic(err)
	}
	t := event.Trigger{
		TriggerID:         "wb-c-1-1",
		CustomerID:        "c-1",
		Kind:              event.TriggerWinback,
		Reasons:           []event.Reason{event.ReasonEmailBounced},
		PrimaryReason:     event.ReasonEmailBounced,
		RiskScore:         0.5,
		ValueTier:         event.TierMedium,
		Priority:          40,
		RecommendedAction: event.ActionChannelSwitch,
		Evidence:          map[string]float64{"emails_bounced_90d": 3},
		AsOf:              1714564800000,
		EmittedAt:         1714564800500,
	}
	value, err := enc.Encode(nil, &t)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(value))

	back, err := codec.DecodeTrigger(context.Background(), nil, value)
	fmt.Println(back.RecommendedAction, err)
	// Output:
	// {"trigger_id":"wb-c-1-1","customer_id":"c-1","kind":"WINBACK","reasons":["EMAIL_BOUNCED"],"primary_reason":"EMAIL_BOUNCED","risk_score":0.5,"value_tier":"MEDIUM","priority":40,"recommended_action":"CHANNEL_SWITCH","evidence":{"emails_bounced_90d":3},"original_trigger_id":null,"as_of":1714564800000,"emitted_at":1714564800500,"p_lapse":null,"treatment":"TREATED"}
	// CHANNEL_SWITCH <nil>
}
