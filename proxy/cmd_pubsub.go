package proxy

import (
	"errors"
	"strings"

	"github.com/pubgate/pubgate/fanout"
	"github.com/pubgate/pubgate/policy"
	"github.com/pubgate/pubgate/upstream"
	"github.com/tidwall/redcon"
	"go.uber.org/zap"
)

const errUpstream = "ERR pubgate: upstream unavailable, try again later"

// maxPublishPipeline bounds how many PUBLISHes one upstream pipeline carries.
const maxPublishPipeline = 512

func (s *session) cmdSubscribe(args [][]byte)    { s.subscribe(upstream.KindChannel, args[1:]) }
func (s *session) cmdPSubscribe(args [][]byte)   { s.subscribe(upstream.KindPattern, args[1:]) }
func (s *session) cmdSSubscribe(args [][]byte)   { s.subscribe(upstream.KindShard, args[1:]) }
func (s *session) cmdUnsubscribe(args [][]byte)  { s.unsubscribe(upstream.KindChannel, args[1:]) }
func (s *session) cmdPUnsubscribe(args [][]byte) { s.unsubscribe(upstream.KindPattern, args[1:]) }
func (s *session) cmdSUnsubscribe(args [][]byte) { s.unsubscribe(upstream.KindShard, args[1:]) }

// countFor is the count Redis puts in (un)subscribe replies: shard
// subscriptions for the shard verbs, channels plus patterns otherwise.
func (s *session) countFor(kind upstream.Kind) int64 {
	if kind == upstream.KindShard {
		return int64(len(s.subs[upstream.KindShard]))
	}
	return int64(len(s.subs[upstream.KindChannel]) + len(s.subs[upstream.KindPattern]))
}

// writeSubReply writes a (un)subscribe confirmation; a nil name is written
// as null (UNSUBSCRIBE with nothing subscribed). Like Redis, it ignores
// CLIENT REPLY OFF|SKIP: a client needs confirmations to track its state.
func (s *session) writeSubReply(verb string, name *string, count int64) {
	s.reply = fanout.AppendPushHeader(s.reply, s.proto, 3)
	s.reply = redcon.AppendBulkString(s.reply, verb)
	if name == nil {
		s.reply = appendNull(s.reply, s.proto)
	} else {
		s.reply = redcon.AppendBulkString(s.reply, *name)
	}
	s.reply = redcon.AppendInt(s.reply, count)
}

// subscribe is all or nothing, as Redis is with ACLs: the whole command is
// refused before any name is subscribed. Quotas are checked before the
// policy.
func (s *session) subscribe(kind upstream.Kind, names [][]byte) {
	for _, n := range names {
		if !s.channelNameOK(n) {
			return
		}
	}
	fresh := s.newSubscriptions(kind, names)
	if limit := s.srv.limits.MaxSubscriptionsPerClient; s.subscriptionCount()+len(fresh) > limit {
		s.writeErrorf("ERR pubgate: a client may hold at most %d subscriptions (limits.max_subscriptions_per_client)", limit)
		return
	}
	action := subscribeAction[kind]
	if err := s.tenant.acquireSubscriptions(kind, len(fresh)); err != nil {
		s.recordDecision(action, string(names[0]), policy.Decision{Reason: err.Error()}, nil)
		s.writeError(quotaReply(err))
		return
	}
	if !s.authorizeAll(action, kind, names) {
		s.tenant.releaseSubscriptions(kind, len(fresh))
		return
	}
	entries := make(map[string]*fanout.Entry, len(fresh))
	if len(fresh) > 0 {
		ctx, cancel := s.upstreamCtx()
		got, err := s.srv.hub.Acquire(ctx, fresh)
		cancel()
		if err != nil {
			s.tenant.releaseSubscriptions(kind, len(fresh))
			if errors.Is(err, upstream.ErrPatternsSharded) {
				s.writeError("ERR pubgate: PSUBSCRIBE is not available: the upstream Redis Cluster carries channels sharded (upstream.cluster.sharded), and Redis cannot match patterns across shards")
				return
			}
			s.logger().Warn("upstream subscribe failed", zap.Stringer("kind", kind), zap.Error(err))
			s.writeError(errUpstream)
			return
		}
		for i, e := range got {
			entries[fresh[i].ClientName] = e
		}
		s.countSubscriptions(kind, len(fresh))
		s.showSubscriptions(kind, len(s.subs[kind])+len(fresh)) // before the first confirmation goes out
	}
	verb := kind.SubscribeVerb()
	for _, n := range names {
		name := string(n)
		e, isNew := entries[name]
		if !isNew {
			s.writeSubReply(verb, &name, s.countFor(kind))
			continue
		}
		delete(entries, name)
		count := s.countFor(kind) + 1
		s.subs[kind][name] = s.srv.hub.Attach(e, s.out, &s.tenant.stats.delivered, func() {
			s.writeSubReply(verb, &name, count)
			s.flushReplies()
		})
	}
}

// authorizeAll asks the policy about every name of a command; on the first
// denial it replies NOPERM and reports false. Allowed names are recorded
// only once the whole command is; if the audit log cannot take them, the
// command is refused.
func (s *session) authorizeAll(action policy.Action, kind upstream.Kind, names [][]byte) bool {
	decisions := s.decideAll(action, kind, names)
	for i, d := range decisions {
		if !d.Allow {
			s.recordDecision(action, string(names[i]), d, nil)
			s.writeError(nopermReply(d))
			return false
		}
	}
	for i, n := range names {
		if !s.recordDecision(action, string(n), decisions[i], nil) {
			s.writeError(errAudit)
			return false
		}
	}
	return true
}

// newSubscriptions lists, once each and in order, the names the session does
// not hold yet.
func (s *session) newSubscriptions(kind upstream.Kind, names [][]byte) []fanout.Subscription {
	var fresh []fanout.Subscription
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		name := string(n)
		if _, held := s.subs[kind][name]; held || seen[name] {
			continue
		}
		seen[name] = true
		ns := s.tenant.ns
		fresh = append(fresh, fanout.Subscription{Kind: kind, ClientName: name, Upstream: ns.Upstream(kind, name), Names: ns, Owner: ns.Tenant})
	}
	return fresh
}

func (s *session) unsubscribe(kind upstream.Kind, names [][]byte) {
	if len(names) == 0 {
		if len(s.subs[kind]) == 0 {
			s.writeSubReply(kind.UnsubscribeVerb(), nil, s.countFor(kind))
			return
		}
		for name := range s.subs[kind] {
			names = append(names, []byte(name))
		}
	}
	var released []*fanout.Entry
	confirms := make([]unsubscribed, len(names))
	for i, n := range names {
		name := string(n)
		if mb, held := s.subs[kind][name]; held {
			released = append(released, s.dropSubscription(kind, name, mb))
		}
		confirms[i] = unsubscribed{name, s.countFor(kind)}
	}
	s.releaseEntries(released)
	s.confirmUnsubscribed(kind, confirms)
}

// unsubscribed is a name's unsubscribe confirmation: the name and the count
// the client held once it was gone.
type unsubscribed struct {
	name  string
	count int64
}

// confirmUnsubscribed writes the confirmations Redis would send. The caller
// has released the subscriptions first: a client that read a confirmation
// finds the membership, the hub's entry and the tenant's quota gone (another
// client's PUBLISH counts it no more), and the confirmation follows the last
// message delivered on the name, which detach ended.
func (s *session) confirmUnsubscribed(kind upstream.Kind, confirms []unsubscribed) {
	for i := range confirms {
		s.writeSubReply(kind.UnsubscribeVerb(), &confirms[i].name, confirms[i].count)
	}
}

// dropSubscription forgets one of the session's subscriptions and returns
// its entry, to be released: once it returns, no message of it reaches the
// session any more.
func (s *session) dropSubscription(kind upstream.Kind, name string, mb *fanout.Membership) *fanout.Entry {
	delete(s.subs[kind], name)
	s.showSubscriptions(kind, len(s.subs[kind]))
	mb.Detach()
	return mb.Entry()
}

// releaseEntries gives back the subscriptions a session dropped, to its
// tenant's quota and to the hub.
func (s *session) releaseEntries(released []*fanout.Entry) {
	if len(released) > 0 {
		s.countReleased(released)
		for _, e := range released {
			s.tenant.releaseSubscriptions(e.Kind(), 1)
		}
		s.srv.hub.Release(released)
	}
}

// unsubscribeAll drops every subscription without confirmations (RESET,
// disconnect).
func (s *session) unsubscribeAll() {
	var released []*fanout.Entry
	for kind := range s.subs {
		for name, mb := range s.subs[kind] {
			released = append(released, s.dropSubscription(upstream.Kind(kind), name, mb))
		}
	}
	s.releaseEntries(released)
}

// publishNames returns a channel name as the client wrote it and as it
// goes upstream. A publisher repeats its channels, so the session keeps the
// strings it made, sparing two allocations per PUBLISH.
func (s *session) publishNames(name []byte) (channel, up string) {
	if n, ok := s.pubNames[string(name)]; ok && n.tenant == s.tenant {
		return n.channel, n.up
	}
	if s.pubNames == nil || len(s.pubNames) >= maxPublishNames {
		s.pubNames = make(map[string]publishName)
	}
	channel = string(name)
	up = s.tenant.ns.Channel(channel)
	s.pubNames[channel] = publishName{tenant: s.tenant, channel: channel, up: up}
	return channel, up
}

// publishName is a channel's names for one tenant (a session may log in
// as another tenant's user).
type publishName struct {
	tenant      *tenant
	channel, up string
}

// maxPublishNames bounds a session's cache of publish names; a publisher of
// more channels starts it over.
const maxPublishNames = 256

// deferPublish queues a PUBLISH or SPUBLISH the command table admitted, so
// that a run of them read together goes upstream as one pipeline; mute says
// whether its reply is dropped (CLIENT REPLY). It declines one over a size
// limit, which cmdPublish refuses.
func (s *session) deferPublish(cmd *command, args [][]byte, mute bool) bool {
	if int64(len(args[2])) > int64(s.srv.limits.MaxPayloadBytes) || int64(len(args[1])) > int64(s.srv.limits.MaxChannelBytes) {
		return false
	}
	kind, action := cmd.kind, policy.Publish
	if kind == upstream.KindShard {
		action = policy.SPublish
	}
	channel, up := s.publishNames(args[1])
	if refusal := s.admitPublish(action, channel, up, args[2]); refusal != "" {
		s.flushPublishes() // the replies owed to earlier publishes come first
		s.mute = mute
		s.writeError(refusal)
		s.mute = false
		return true
	}
	s.pending = append(s.pending, upstream.Publication{Kind: kind, Channel: up, Payload: args[2]})
	s.pendingMute = append(s.pendingMute, mute)
	if len(s.pending) >= maxPublishPipeline {
		s.flushPublishes()
	}
	return true
}

// admitPublish checks a publish against the tenant's quotas, then the
// policy; it returns the error reply of a refusal.
func (s *session) admitPublish(action policy.Action, channel, up string, payload []byte) (refusal string) {
	if err := s.tenant.admitPublish(len(payload)); err != nil {
		s.recordDecision(action, channel, policy.Decision{Reason: err.Error()}, payload)
		return quotaReply(err)
	}
	d := s.decide(action, channel, up)
	switch {
	case !d.Allow:
		s.recordDecision(action, channel, d, payload)
		return nopermReply(d)
	case !s.recordDecision(action, channel, d, payload):
		return errAudit
	}
	return ""
}

// channelNameOK refuses, with an error reply, a channel or pattern name
// over limits.max_channel_bytes: names are kept per subscription, and a
// client may hold many.
func (s *session) channelNameOK(name []byte) bool {
	if max := int64(s.srv.limits.MaxChannelBytes); int64(len(name)) > max {
		s.writeErrorf("ERR pubgate: channel name of %d bytes exceeds limits.max_channel_bytes (%d)", len(name), max)
		return false
	}
	return true
}

// cmdPublish sees only what deferPublish declined: a channel name or a
// message over its size limit.
func (s *session) cmdPublish(args [][]byte) {
	if !s.channelNameOK(args[1]) {
		return
	}
	s.writeErrorf("ERR pubgate: message of %d bytes exceeds limits.max_payload_bytes (%d)", len(args[2]), int64(s.srv.limits.MaxPayloadBytes))
}

// flushPublishes sends the queued publishes as one pipeline and writes their
// replies in order. The queue is the batch: its slices are reused.
func (s *session) flushPublishes() {
	if len(s.pending) == 0 {
		return
	}
	batch := s.pending
	ctx, cancel := s.upstreamCtx()
	err := s.srv.broker.Publish(ctx, batch)
	cancel()
	s.countPublishes(batch, err)
	failed := 0
	for i, p := range batch {
		s.mute = s.pendingMute[i]
		if err != nil || p.Err != nil {
			failed++
			s.writeError(errUpstream)
			continue
		}
		s.writeInt(s.srv.hub.Receivers(p.Kind, p.Channel, p.Receivers))
	}
	if failed > 0 {
		s.logger().Warn("upstream publish failed", zap.Int("messages", failed), zap.Error(firstError(err, batch)))
	}
	s.mute = false
	clear(s.pending) // drop the payloads, which point into the request buffer
	s.pending, s.pendingMute = s.pending[:0], s.pendingMute[:0]
}

func firstError(err error, batch []upstream.Publication) error {
	if err != nil {
		return err
	}
	for _, p := range batch {
		if p.Err != nil {
			return p.Err
		}
	}
	return nil
}

// cmdPubsub answers PUBSUB introspection about the caller's tenant only.
func (s *session) cmdPubsub(args [][]byte) {
	sub := strings.ToLower(string(args[1]))
	n := len(args)
	switch {
	case sub == "channels" && n <= 3:
		s.pubsubChannels(upstream.KindChannel, args[2:])
	case sub == "shardchannels" && n <= 3:
		s.pubsubChannels(upstream.KindShard, args[2:])
	case sub == "numsub":
		s.pubsubNumSub(upstream.KindChannel, args[2:])
	case sub == "shardnumsub":
		s.pubsubNumSub(upstream.KindShard, args[2:])
	case sub == "numpat" && n == 2:
		s.writeInt(s.numPat())
	case sub == "help" && n == 2:
		s.writeStrings(pubsubHelp)
	case sub == "channels" || sub == "shardchannels" || sub == "numpat" || sub == "help":
		s.writeErrorf("ERR wrong number of arguments for 'pubsub|%s' command", sub)
	default:
		s.writeErrorf("ERR unknown subcommand '%s'. Try PUBSUB HELP.", printable(args[1]))
	}
}

var pubsubHelp = []string{
	"PUBSUB <subcommand> [<arg> ...]. pubgate answers about your tenant's channels only:",
	"CHANNELS [<pattern>]", "NUMPAT", "NUMSUB [<channel> ...]",
	"SHARDCHANNELS [<pattern>]", "SHARDNUMSUB [<shardchannel> ...]", "HELP",
}

func (s *session) pubsubChannels(kind upstream.Kind, pattern [][]byte) {
	p := "*"
	if len(pattern) == 1 {
		p = string(pattern[0])
	}
	ctx, cancel := s.upstreamCtx()
	list, err := s.srv.broker.Channels(ctx, kind, s.tenant.ns.Pattern(p))
	cancel()
	if err != nil {
		s.writeError(errUpstream)
		return
	}
	names := list[:0]
	for _, ch := range list {
		if name, ok := s.tenant.ns.Strip(ch); ok && s.maySubscribe(kind, name, ch) {
			names = append(names, name)
		}
	}
	s.writeStrings(names)
}

// numPat counts the patterns held on this node that the caller could hold
// too: the same upstream pattern in its namespace, allowed by the policy.
func (s *session) numPat() int64 {
	var n int64
	for _, e := range s.srv.hub.HeldPatterns() {
		if s.tenant.ns.Pattern(e.ClientName()) == e.Name() && s.maySubscribe(upstream.KindPattern, e.ClientName(), e.Name()) {
			n++
		}
	}
	return n
}

func (s *session) pubsubNumSub(kind upstream.Kind, channels [][]byte) {
	names := make([]string, len(channels))
	for i, c := range channels {
		names[i] = s.tenant.ns.Channel(string(c))
	}
	counts := make([]int64, len(names))
	if len(names) > 0 {
		ctx, cancel := s.upstreamCtx()
		var err error
		counts, err = s.srv.broker.NumSub(ctx, kind, names...)
		cancel()
		if err != nil {
			s.writeError(errUpstream)
			return
		}
	}
	s.writeArray(2 * len(names))
	for i, c := range channels {
		s.writeBulk(string(c))
		if s.maySubscribe(kind, string(c), names[i]) {
			s.writeInt(s.srv.hub.NumSub(kind, names[i], counts[i]))
		} else {
			s.writeInt(0) // nothing about channels the caller may not use
		}
	}
}
