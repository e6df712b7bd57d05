#!/usr/bin/env bash
# Starts, on loopback, a 3-master Redis Cluster and two pubgate nodes in front
# of it (node1.yaml, node2.yaml), then waits until Ctrl-C and stops them all.
#
#   examples/cluster/run.sh            # run until Ctrl-C
#   examples/cluster/run.sh --smoke    # subscribe on node 2, publish on node 1, check, stop
#
# Ports (override through the environment): Redis 7001-7003 (REDIS_PORTS),
# pubgate 6381 and 6382 (PUBGATE_PORTS), admin 9091 and 9092 (ADMIN_PORTS).
# The nodes' local CA is kept in examples/cluster/.data (DATA_DIR), apart from
# the quickstart's.
# Needs redis-server, redis-cli and Go.
set -euo pipefail
cd "$(dirname "$0")/../.."

read -r -a redis_ports <<<"${REDIS_PORTS:-7001 7002 7003}"
read -r -a pubgate_ports <<<"${PUBGATE_PORTS:-6381 6382}"
read -r -a admin_ports <<<"${ADMIN_PORTS:-9091 9092}"
data=${DATA_DIR:-examples/cluster/.data}
case $data in /*) ;; *) data=$PWD/$data ;; esac # the commands printed below work from anywhere
smoke=false
[ "${1:-}" = "--smoke" ] && smoke=true

work=$(mktemp -d)
redis_pids=() node_pids=() client_pids=()
stop() { # stop PID...: SIGTERM them all, then wait for each
	for pid in "$@"; do kill "$pid" 2>/dev/null || true; done
	for pid in "$@"; do wait "$pid" 2>/dev/null || true; done
}
cleanup() {
	# Clients before the pubgate nodes, the nodes before Redis: nothing sees
	# the server it talks to go away (a redis-cli would print "Error: Server
	# closed the connection", a node would log the upstream as lost).
	stop "${client_pids[@]}"
	stop "${node_pids[@]}"
	stop "${redis_pids[@]}"
	rm -rf "$work" examples/cluster/.node[12].run.yaml
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for() { # wait_for DESCRIPTION COMMAND...: retry for up to 30 s
	local what=$1
	shift
	for _ in $(seq 300); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		sleep 0.1
	done
	echo "timed out waiting for $what" >&2
	return 1
}

echo "building pubgate"
go build -o "$work/pubgate" ./cmd/pubgate

seeds=()
for port in "${redis_ports[@]}"; do
	mkdir -p "$work/redis-$port"
	redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes \
		--cluster-config-file nodes.conf --cluster-node-timeout 2000 \
		--dir "$work/redis-$port" --save '' --appendonly no \
		--logfile "$work/redis-$port/redis.log" &
	redis_pids+=($!)
	seeds+=("127.0.0.1:$port")
	wait_for "redis-server on $port" redis-cli -p "$port" ping
done
redis-cli --cluster create "${seeds[@]}" --cluster-yes >"$work/cluster-create.log"
for port in "${redis_ports[@]}"; do
	wait_for "cluster_state:ok on $port" sh -c "redis-cli -p $port cluster info | grep -q cluster_state:ok"
done
echo "Redis Cluster up: ${seeds[*]}"

# The configurations name the default ports; rewrite them to the ones in use.
rewrite=(-e "s/127.0.0.1:7001/${seeds[0]}/" -e "s/127.0.0.1:7002/${seeds[1]}/" -e "s/127.0.0.1:7003/${seeds[2]}/"
	-e "s/127.0.0.1:6381/127.0.0.1:${pubgate_ports[0]}/" -e "s/127.0.0.1:6382/127.0.0.1:${pubgate_ports[1]}/"
	-e "s/127.0.0.1:9091/127.0.0.1:${admin_ports[0]}/" -e "s/127.0.0.1:9092/127.0.0.1:${admin_ports[1]}/"
	-e "s|data_dir: examples/cluster/.data|data_dir: \"$data\"|")
for n in 1 2; do
	# Next to the originals, so that the relative policy path still holds.
	sed "${rewrite[@]}" "examples/cluster/node$n.yaml" >"examples/cluster/.node$n.run.yaml"
	"$work/pubgate" serve --config "examples/cluster/.node$n.run.yaml" 2>"$work/pubgate-$n.log" &
	node_pids+=($!)
	# One at a time: the first creates the local CA that both use.
	wait_for "pubgate node $n ready" curl -fsS "http://127.0.0.1:${admin_ports[$((n - 1))]}/readyz"
	rm -f "examples/cluster/.node$n.run.yaml"
done

cli=(redis-cli --tls --cacert "$data/ca.crt" --user alice --pass alice-secret --no-auth-warning)
echo "pubgate nodes up on 127.0.0.1:${pubgate_ports[0]} and 127.0.0.1:${pubgate_ports[1]}"

if $smoke; then
	"${cli[@]}" -p "${pubgate_ports[1]}" SUBSCRIBE orders >"$work/received" 2>&1 &
	client_pids+=($!)
	wait_for "the subscription on node 2" grep -q orders "$work/received" || {
		echo "the subscriber got: $(cat "$work/received")" >&2
		tail -n 20 "$work/pubgate-2.log" >&2
		exit 1
	}
	"${cli[@]}" -p "${pubgate_ports[0]}" PUBLISH orders "hello across nodes" >/dev/null
	wait_for "the message on node 2" grep -q "hello across nodes" "$work/received"
	echo "smoke test passed: published on node 1, received on node 2"
	exit 0
fi

cat <<EOT
Try, in two terminals:
  redis-cli -p ${pubgate_ports[1]} --tls --cacert $data/ca.crt --user alice --pass alice-secret SUBSCRIBE orders
  redis-cli -p ${pubgate_ports[0]} --tls --cacert $data/ca.crt --user alice --pass alice-secret PUBLISH orders hello
Metrics: curl http://127.0.0.1:${admin_ports[0]}/metrics
Logs in $work. Ctrl-C stops everything.
EOT
wait
