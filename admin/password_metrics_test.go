package admin

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/pubgate/pubgate/auth"
)

// TestPasswordMetrics: the password table's counters become the
// pubgate_password_* series.
func TestPasswordMetrics(t *testing.T) {
	c := NewCollector(Sources{Version: "1.2.3", Passwords: func() auth.PasswordStats {
		return auth.PasswordStats{CacheHits: 1990, CacheMisses: 10, Comparisons: 3, QueueWaits: 2, QueueWait: 1500 * time.Millisecond, QueueFull: 1}
	}})
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %+v", err, problems)
	}
	expected := `
# HELP pubgate_password_cache_total Password logins of configured users by whether their password was verified before against the same hash (hit: no bcrypt check) or not (miss: checked; logins sharing one check count once); auth.verified_cache.
# TYPE pubgate_password_cache_total counter
pubgate_password_cache_total{result="hit"} 1990
pubgate_password_cache_total{result="miss"} 10
# HELP pubgate_password_checks_total bcrypt checks run; concurrent logins with the same credentials share one.
# TYPE pubgate_password_checks_total counter
pubgate_password_checks_total 3
# HELP pubgate_password_check_queue_waits_total bcrypt checks that waited for their turn (auth.bcrypt_concurrency were running).
# TYPE pubgate_password_check_queue_waits_total counter
pubgate_password_check_queue_waits_total 2
# HELP pubgate_password_check_queue_wait_seconds_total Time bcrypt checks waited for their turn, in all.
# TYPE pubgate_password_check_queue_wait_seconds_total counter
pubgate_password_check_queue_wait_seconds_total 1.5
# HELP pubgate_password_check_queue_full_total Logins refused because limits.max_clients checks were already waiting.
# TYPE pubgate_password_check_queue_full_total counter
pubgate_password_check_queue_full_total 1
`
	names := []string{"pubgate_password_cache_total", "pubgate_password_checks_total", "pubgate_password_check_queue_waits_total",
		"pubgate_password_check_queue_wait_seconds_total", "pubgate_password_check_queue_full_total"}
	if err := testutil.CollectAndCompare(c, strings.NewReader(expected), names...); err != nil {
		t.Fatal(err)
	}
}
