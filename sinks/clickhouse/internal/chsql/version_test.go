package chsql

import "testing"

func TestFeaturesOf(t *testing.T) {
	f := func(version string, want Features) {
		t.Helper()
		v, err := ParseVersion(version)
		if err != nil {
			t.Fatalf("%s: %v", version, err)
		}
		if got := FeaturesOf(v); got != want {
			t.Errorf("%s: %+v, want %+v", version, got, want)
		}
	}
	const y = true
	f("1.1.54394", Features{})
	f("18.16.1", Features{InsertDistributedSync: y})
	f("19.5.3", Features{InsertDistributedSync: y})
	f("19.6.1", Features{InsertDistributedSync: y, TTL: y})
	f("20.1.2.4", Features{InsertDistributedSync: y, LowCardinality: true, TTL: y})
	f("20.3.1", Features{InsertDistributedSync: y, InsertQuorum: y, LowCardinality: true, TTL: y})
	f("21.11.1", Features{InsertDistributedSync: y, InsertQuorum: y, LowCardinality: true, AsyncInsert: true, TTL: y})
	f("22.1.3", Features{InsertDistributedSync: y, InsertQuorum: y, LowCardinality: true, AsyncInsert: true, TTL: y})
	f("22.2.2.1", Features{InsertDistributedSync: y, InsertQuorum: y, LowCardinality: true, AsyncInsert: true, InsertDedupToken: true, StringSettings: true, TTL: y})
	f("23.2.1", Features{InsertDistributedSync: y, InsertQuorum: y, LowCardinality: true, AsyncInsert: true, InsertDedupToken: true, StringSettings: true, TTL: y})
	f("23.3.1", Features{InsertDistributedSync: y, InsertQuorum: y, LowCardinality: true, AsyncInsert: true, InsertDedupToken: true, StringSettings: true, LightweightDelete: true, TTL: y})
	f("26.7.2.1", Features{InsertDistributedSync: y, InsertQuorum: y, LowCardinality: true, AsyncInsert: true, InsertDedupToken: true, StringSettings: true, LightweightDelete: true, TTL: y})
}

func TestParseVersionBad(t *testing.T) {
	for _, s := range []string{"", "18", "x.1", "1.-2", "18.y.1"} {
		if _, err := ParseVersion(s); err == nil {
			t.Errorf("%q: no error", s)
		}
	}
	// Parts after the patch (the build number) are not needed.
	v, err := ParseVersion(" 24.3.1.2672-lts\n")
	if err != nil || v.Major != 24 || v.Minor != 3 || v.Patch != 1 || v.String() != "24.3.1.2672-lts" {
		t.Errorf("24.3.1.2672-lts: %+v, %v", v, err)
	}
}

func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"18.16.1", "26.7.2.1", "", "1.2", "..", "22.2.x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseVersion(s)
		if err != nil {
			return
		}
		if v.Major < 0 || v.Minor < 0 || v.Patch < 0 {
			t.Fatalf("%q: negative parts %+v", s, v)
		}
		if v.AtLeast(v.Major, v.Minor) != true || v.AtLeast(v.Major, v.Minor+1) {
			t.Fatalf("%q: AtLeast inconsistent for %+v", s, v)
		}
	})
}
