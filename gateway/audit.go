package gateway

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/pubgate/pubgate/audit"
	"github.com/pubgate/pubgate/config"
	"github.com/pubgate/pubgate/policy"
	"github.com/pubgate/pubgate/proxy"
	"go.uber.org/zap"
)

// openAudit opens the configured audit log; without one, records go to the
// operational log. The returned close flushes and seals it, waiting until
// ctx is done for a failing sink.
func openAudit(c config.Audit, stdout io.Writer, log *zap.Logger) (proxy.Auditor, func(context.Context), error) {
	if !c.Enabled() {
		return nil, func(context.Context) {}, nil
	}
	key, err := loadAuditKey(c, log)
	if err != nil {
		return nil, nil, err
	}
	o := audit.Options{
		Key: key, FailClosed: c.FailClosed, QueueSize: c.QueueSize,
		FsyncInterval: c.FsyncInterval, FsyncRecords: c.FsyncRecords, SealInterval: c.SealInterval,
		Logger: log.Named("audit"),
	}
	if c.Sink == "file" {
		if o.File, err = audit.OpenFile(audit.FileOptions{Path: c.Path, MaxSize: int64(c.MaxSize), MaxAge: c.MaxAge, MaxBackups: c.MaxBackups}); err != nil {
			return nil, nil, err
		}
	} else {
		o.Stream = stdout
	}
	l, err := audit.New(o)
	if err != nil {
		return nil, nil, err
	}
	log.Info("audit log open", zap.String("sink", c.Sink), zap.String("path", c.Path), zap.String("key_file", c.KeyFile), zap.Bool("fail_closed", c.FailClosed))
	return l, func(ctx context.Context) {
		if err := l.Close(ctx); err != nil {
			log.Error("audit log not closed cleanly", zap.Error(err))
		}
	}, nil
}

// loadAuditKey loads the chain key; with key_file: auto it creates the key
// on the first start, and says where, since verify needs it.
func loadAuditKey(c config.Audit, log *zap.Logger) ([]byte, error) {
	if w := c.KeyWarning(); w != "" {
		log.Warn("audit: " + w)
	}
	if !c.KeyAuto {
		return audit.LoadKey(c.KeyFile, c.KeyEnv)
	}
	key, created, err := audit.LoadOrCreateKey(c.KeyFile)
	if created {
		log.Info("audit key created (key_file: auto); pubgate audit verify needs it: --key-file "+c.KeyFile, zap.String("key_file", c.KeyFile))
	}
	return key, err
}

// recordReload records a policy reload, applied, refused or unchanged.
func recordReload(a proxy.Auditor, r policy.ReloadResult) {
	rec := audit.Record{Time: time.Now(), Event: audit.EventPolicyReload, Outcome: audit.Success, Revision: r.Revision}
	switch {
	case errors.Is(r.Err, policy.ErrUnchanged):
		rec.Reason = "unchanged"
	case r.Err != nil:
		rec.Outcome, rec.Reason = audit.Failure, "refused, revision "+r.Previous+" stays in effect: "+r.Err.Error()
	default:
		rec.Reason = "replaces revision " + r.Previous
	}
	record(a, rec)
}

// record hands a record of pubgate's own (not of a client) to the audit
// log, if there is one; the log says what it could not take.
func record(a proxy.Auditor, rec audit.Record) {
	if a != nil {
		_ = a.Record(rec)
	}
}
