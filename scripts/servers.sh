#!/usr/bin/env bash
# `make servers`: the four servers the tests, the demo and the benchmarks talk to answer, and
# RabbitMQ's management API (port 15672, where dagz creates worker vhosts) is on. As root it
# starts a server that is down and enables the management plugin; otherwise it names what is
# missing and the command that fixes it, in one line, and fails. Called by .ci/run (through
# `make test`) and by `make e2e`, `make demo` and `make bench`.
set -euo pipefail

log() { printf '=== servers: %s\n' "$*"; }

wait_for() { # wait_for NAME TIMEOUT_S CMD...
    local name=$1 timeout=$2; shift 2
    local deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            echo "servers: $name did not answer within ${timeout}s" >&2
            return 1
        fi
        sleep 1
    done
}

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 -U postgres; }
my_up() { mariadb-admin -h 127.0.0.1 -P 3306 -u root ping; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping; }
rabbit_up() { (exec 3<>/dev/tcp/127.0.0.1/5672); }
# SERVERS_RABBITMQ_API: the management API's address (a test points it at a closed port).
mgmt_up() { curl -fsS -o /dev/null -u guest:guest "${SERVERS_RABBITMQ_API:-http://127.0.0.1:15672}/api/overview"; }

# NAME CHECK START-COMMAND (a string: shown to a non-root user, run as root)
SERVERS=(
    "PostgreSQL|pg_up|pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start"
    "MariaDB|my_up|install -d -o mysql -g mysql /run/mysqld && start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd"
    "Redis|redis_up|/etc/init.d/redis-server start"
    "RabbitMQ|rabbit_up|/etc/init.d/rabbitmq-server start"
    "the RabbitMQ management API|mgmt_up|rabbitmq-plugins enable rabbitmq_management"
)

for entry in "${SERVERS[@]}"; do
    IFS='|' read -r name check start <<<"$entry"
    "$check" >/dev/null 2>&1 && continue
    if ((EUID != 0)); then
        echo "servers: $name is not answering on 127.0.0.1 — start it as root with: $start" >&2
        exit 1
    fi
    log "starting $name: $start"
    bash -c "$start" >/dev/null || true
    wait_for "$name" 120 "$check"
    log "$name is up"
done
