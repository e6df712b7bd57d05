package proxy

import (
	"testing"

	"github.com/pubgate/pubgate/internal/testutil"
)

func testutilDial(t *testing.T, env *testEnv) *testutil.RESPConn {
	return testutil.DialRESP(t, env.addr)
}
