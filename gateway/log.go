package gateway

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/pubgate/pubgate/config"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// newLogger is the operational log, written to out; its level can change
// while it runs.
func newLogger(c config.Log, out io.Writer) (*zap.Logger, zap.AtomicLevel, error) {
	level, err := zap.ParseAtomicLevel(c.Level)
	if err != nil {
		return nil, level, fmt.Errorf("log.level: %w", err)
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	encCfg.EncodeDuration = zapcore.StringDurationEncoder
	enc := zapcore.NewJSONEncoder(encCfg)
	if c.Format == "console" {
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	}
	core := zapcore.NewCore(enc, zapcore.AddSync(out), level)
	return zap.New(core), level, nil
}

// setRedisLogger guards go-redis's process-wide logger, which its goroutines
// read at any time: it is set once, by the first serve.
var setRedisLogger sync.Once

// redisLogRepeat is how often one of go-redis's messages may repeat in the
// operational log: while the upstream is down, its connection pool warns
// on every failed dial (each second), and pubgate's own "upstream
// unreachable" line already says what is going on.
const redisLogRepeat = time.Minute

// redisLogger sends go-redis's internal messages (reconnects, failed dials)
// to zap, each kind of message at most once per redisLogRepeat, with the
// number of repeats left out since it was last logged.
type redisLogger struct {
	log   *zap.Logger
	every time.Duration
	mu    sync.Mutex
	seen  map[string]*redisLogSeen // by format string
}

type redisLogSeen struct {
	at      time.Time // when it was last logged
	skipped int       // repeats since then, not logged
}

func newRedisLogger(log *zap.Logger, every time.Duration) *redisLogger {
	return &redisLogger{log: log, every: every, seen: make(map[string]*redisLogSeen)}
}

func (l *redisLogger) Printf(_ context.Context, format string, v ...any) {
	now := time.Now()
	l.mu.Lock()
	s := l.seen[format]
	if s != nil && now.Sub(s.at) < l.every {
		s.skipped++
		l.mu.Unlock()
		return
	}
	if s == nil {
		if len(l.seen) >= 256 { // formats are constants; bound it anyway
			clear(l.seen)
		}
		s = &redisLogSeen{}
		l.seen[format] = s
	}
	skipped := s.skipped
	s.at, s.skipped = now, 0
	l.mu.Unlock()
	var fields []zap.Field
	if skipped > 0 {
		fields = append(fields, zap.Int("repeats_not_logged", skipped))
	}
	l.log.Warn(fmt.Sprintf(format, v...), fields...)
}
