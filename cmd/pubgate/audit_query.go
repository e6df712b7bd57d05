package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pubgate/pubgate/action"
	"github.com/pubgate/pubgate/audit"
	"github.com/spf13/cobra"
)

// auditQueryFlags are the command line of audit query, before parsing.
type auditQueryFlags struct {
	since, until            string
	tenants, users, actions []string
	events, outcomes        []string
	channel, client         string
	format                  string
	count                   bool
}

func newAuditQueryCommand() *cobra.Command {
	var fl auditQueryFlags
	cmd := &cobra.Command{
		Use:   "query [flags] FILE...",
		Short: "Select audit records by time, identity, event, outcome, action, channel or client",
		Long: "query prints the records of audit files (given in any order: rotated files\n" +
			"are read in chain order) that match every filter given; a filter given\n" +
			"several values (repeated, or comma-separated) matches any of them. The\n" +
			"default output is the matching lines exactly as they are in the log, for\n" +
			"jq or for filing; --format table is for reading.\n\n" +
			"--user and --channel match the exact bytes of the names, as the shell\n" +
			"passes them (bash: --channel $'f1\\xff*'), also for names that are not\n" +
			"UTF-8, which records carry in user_b64 / channel_b64. The table shows\n" +
			"such names, and any that would not read unambiguously, Go-quoted.\n\n" +
			"query does NOT verify the chain: a record it prints may have been altered.\n" +
			"When the answer is evidence, run 'pubgate audit verify' over the same\n" +
			"files first.",
		Example: "  # who was denied what in the last day\n" +
			"  pubgate audit query --since 24h --event authz --outcome deny --format table /var/log/pubgate/audit*.log\n" +
			"  # every login of two users in March\n" +
			"  pubgate audit query --since 2025-03-01 --until 2025-04-01 --event auth --user alice,bob audit*.log\n" +
			"  # how many publishes to orders channels came from one host\n" +
			"  pubgate audit query --action publish --channel 'orders.*' --client 10.0.0.5 --count audit*.log",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			f, err := fl.filter(time.Now())
			if err != nil {
				return err
			}
			out, err := audit.NewOutput(cmd.OutOrStdout(), fl.format, fl.count)
			if err != nil {
				return fmt.Errorf("--format %w", err)
			}
			qerr := audit.Query(files, f, out.Emit)
			return errors.Join(qerr, out.Close(qerr == nil))
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&fl.since, "since", "", "only records at or after this time: RFC 3339, a date (UTC), or a duration before now (24h)")
	flags.StringVar(&fl.until, "until", "", "only records before this time: RFC 3339, a date (UTC), or a duration before now")
	flags.StringSliceVar(&fl.tenants, "tenant", nil, "only records of these tenants")
	flags.StringSliceVar(&fl.users, "user", nil, "only records of these users (their exact bytes)")
	flags.StringSliceVar(&fl.events, "event", nil, "only these events: "+audit.Names(audit.Events))
	flags.StringSliceVar(&fl.outcomes, "outcome", nil, "only these outcomes: "+audit.Names(audit.Outcomes))
	flags.StringSliceVar(&fl.actions, "action", nil, "only these actions: "+actionNames)
	flags.StringVar(&fl.channel, "channel", "", "only records of channels matching this Redis glob (orders.*), on their exact bytes")
	flags.StringVar(&fl.client, "client", "", "only records of this client address: host:port, or host for all its connections")
	flags.StringVar(&fl.format, "format", "json", "output: json (the log's own lines) or table")
	flags.BoolVar(&fl.count, "count", false, "print only the number of matching records")
	return cmd
}

// filter parses the flags into an audit.Filter; now anchors durations.
func (fl *auditQueryFlags) filter(now time.Time) (audit.Filter, error) {
	f := audit.Filter{
		Tenant: trimAll(fl.tenants), User: trimAll(fl.users), Actions: trimAll(fl.actions),
		Channel: fl.channel, ClientAddr: fl.client,
	}
	var err error
	if f.Since, err = parseQueryTime("--since", fl.since, now); err != nil {
		return f, err
	}
	if f.Until, err = parseQueryTime("--until", fl.until, now); err != nil {
		return f, err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return f, fmt.Errorf("--since %s is not before --until %s: nothing could match", fl.since, fl.until)
	}
	for _, s := range trimAll(fl.events) {
		ev, err := audit.ParseEvent(s)
		if err != nil {
			return f, err // names the flag's values, and lists the valid ones
		}
		f.Events = append(f.Events, ev)
	}
	for _, s := range f.Actions {
		if _, ok := action.Parse(s); !ok {
			return f, fmt.Errorf("--action %q: not an action; one of %s", s, actionNames)
		}
	}
	for _, s := range trimAll(fl.outcomes) {
		o, err := audit.ParseOutcome(s)
		if err != nil {
			return f, err
		}
		f.Outcomes = append(f.Outcomes, o)
	}
	return f, nil
}

// actionNames lists the actions a record can name.
var actionNames = strings.Join(action.Names(action.All()...), ", ")

// parseQueryTime reads the time bound of a flag (audit.ParseTimeBound).
func parseQueryTime(flag, s string, now time.Time) (time.Time, error) {
	t, err := audit.ParseTimeBound(s, now)
	if err != nil {
		return t, fmt.Errorf("%s %q: %w", flag, s, err)
	}
	return t, nil
}

// trimAll drops the spaces of "a, b" and empty values, which
// comma-separated flags otherwise keep.
func trimAll(values []string) []string {
	var out []string
	for _, v := range values {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
