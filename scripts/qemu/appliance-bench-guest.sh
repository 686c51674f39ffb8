# Guest half of `scripts/bench boot` (see scripts/bench): on a fresh card, boot 1 (first boot:
# grow + mkfs) waits for the recorder's first durable frame and reboots; boot 2 (a normal
# boot) waits for it too and powers off. The figures are the console's
# "first durable frame ... at uptime X s" lines, printed by overlay's run-blackbox.
# shellcheck shell=sh
mkdir -p /data/bench
n=$(( $(cat /data/bench/boots 2>/dev/null || echo 0) + 1 ))
echo "$n" >/data/bench/boots
sync
i=0
until wget -qO- http://127.0.0.1/health 2>/dev/null | grep -q '"durable_seq":[0-9]'; do
    sleep 0.5; i=$((i + 1)); [ $i -lt 240 ] || break
done
sleep 1
if [ "$n" -ge 2 ]; then poweroff; else reboot; fi
