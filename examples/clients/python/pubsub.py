#!/usr/bin/env python3
"""redis-py against pubgate: subscribe, pattern-subscribe, publish, unsubscribe.

    python3 pubsub.py 127.0.0.1 6380 alice alice-secret [CA_FILE [CERT_FILE KEY_FILE]]

With CA_FILE (pubgate's local CA certificate, for example), the connection
uses TLS and verifies pubgate's certificate against it; with CERT_FILE and
KEY_FILE it also presents a client certificate (mTLS).

Prints "ok" and exits 0 when every step behaved as it does against Redis.
"""
import sys
import time

import redis


def next_message(pubsub, kind):
    deadline = time.time() + 20
    while time.time() < deadline:
        message = pubsub.get_message(timeout=1.0)
        if message is not None:
            if message["type"] != kind:
                sys.exit(f"expected {kind}, got {message}")
            return message
    sys.exit(f"no {kind} received")


def main():
    host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    tls = {"ssl": True, "ssl_ca_certs": sys.argv[5]} if len(sys.argv) > 5 else {}
    if len(sys.argv) > 7:
        tls.update(ssl_certfile=sys.argv[6], ssl_keyfile=sys.argv[7])
    client = redis.Redis(host=host, port=port, username=user, password=password, **tls)
    assert client.ping()

    pubsub = client.pubsub()
    pubsub.subscribe("orders")
    next_message(pubsub, "subscribe")
    pubsub.psubscribe("orders.*")
    next_message(pubsub, "psubscribe")

    assert client.publish("orders", "hello") == 1
    message = next_message(pubsub, "message")
    assert (message["channel"], message["data"]) == (b"orders", b"hello"), message
    assert client.publish("orders.created", "o-1") == 1
    message = next_message(pubsub, "pmessage")
    assert (message["pattern"], message["channel"], message["data"]) == (b"orders.*", b"orders.created", b"o-1"), message
    assert client.pubsub_numsub("orders") == [(b"orders", 1)]

    pubsub.unsubscribe("orders")
    next_message(pubsub, "unsubscribe")
    assert client.publish("orders", "gone") == 0
    pubsub.close()
    client.close()
    print("ok")


if __name__ == "__main__":
    main()
