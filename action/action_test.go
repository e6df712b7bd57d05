package action

import "testing"

func TestNamesRoundTrip(t *testing.T) {
	for a := range Count {
		if got, ok := Parse(a.String()); !ok || got != a {
			t.Errorf("Parse(%q) = %v, %v", a.String(), got, ok)
		}
	}
	if _, ok := Parse("unsubscribe"); ok {
		t.Error("unsubscribe is no action a policy decides")
	}
	if Count.String() != "unknown" {
		t.Errorf("out of range: %q", Count.String())
	}
	if got := Names(All()...); len(got) != int(Count) || got[0] != "connect" || got[Count-1] != "spublish" {
		t.Errorf("Names(All()...) = %v", got)
	}
	for _, a := range OnChannels() {
		if a == Connect {
			t.Error("connect is not on a channel")
		}
	}
}
