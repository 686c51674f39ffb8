# The guest half of scripts/qemu/home-test (busybox sh, as root, in the CI image; handed in
# through qemu's firmware config, started at the end of rcS by the CI image's hook).
# Three mac80211_hwsim radios, one channel each at a time (like the Pi's brcmfmac):
#   wlan0 (+ sta0)  the dash cam: its access point, and wifi-home's station on the same radio
#   wlan1           a phone, in its own network namespace, joined to the dash cam's Wi-Fi
#   wlan2           the home router, in its own network namespace: hostapd "HomeNet" on
#                   channel 11 (the dash cam's AP starts on 6), DHCP (dnsmasq), and an uplink
#                   to the host's S3 server and webhook receiver: TCP relays (busybox nc) on
#                   10.77.0.1:8333 and :8080 whose far legs leave through the wired interface
#                   to qemu's guestfwd (10.0.2.100:8333, :8080)
# Phase 1 (first boot): the AP on channel 6 with the home network absent; the phone joins; a
# Save incident, whose alert waits in the outbox (no network); the home network appears on channel 11; wifi-home moves the AP there and joins; the phone
# rejoins by itself; then "home ready" and the host watches the offload (and cuts the power).
# Phase 2 (after the power cut): the home network is there from the start; "home ready"; the
# host waits for the resumed upload to verify, then sends the names of the objects it holds on
# port 9000; this side prints the MD5 of each segment's used bytes ("BBTEST-MD5 NAME MD5").
# Markers: "BBTEST: <name> ok|FAIL ..." on the console; the host judges them.
# shellcheck shell=sh
export PATH=/usr/bin:/bin:/usr/sbin:/sbin
say() { echo "BBTEST: $*"; }
ok() { say "$1 ok${2:+ $2}"; }
fail() { say "$1 FAIL${2:+ $2}"; }
up() { cut -d' ' -f1 /proc/uptime; }
secs() { awk -v a="$1" -v b="$(up)" 'BEGIN { printf "%.1f", b - a }'; }
DATA=/data/blackbox
RUN=/run/blackbox
phase=$(cat /sys/firmware/qemu_fw_cfg/by_name/opt/blackbox/phase/raw 2>/dev/null)
echo
say "home phase $phase (uptime $(up) s)"
ap_freq() { iw dev wlan0 info 2>/dev/null | sed -n 's/.*channel [0-9]* (\([0-9]*\) MHz).*/\1/p'; }
home_state() { cat "$RUN/home.state" 2>/dev/null; }

i=0
while [ ! -f "$RUN/dnsmasq.pid" ] && [ $i -lt 120 ]; do sleep 1; i=$((i + 1)); done
[ -f "$RUN/dnsmasq.pid" ] && ok ap-up "channel $(ap_freq) MHz" || fail ap-up "$(tail -5 "$RUN/hostapd.log" 2>/dev/null)"
i=0
while [ -z "$(home_state)" ] && [ $i -lt 60 ]; do sleep 1; i=$((i + 1)); done

# --- the home router (radio 3) ----------------------------------------------------------------
home_up() {
    unshare -n sleep 100000 &
    hpid=$!
    sleep 1
    iw phy "$(cat /sys/class/net/wlan2/phy80211/name)" set netns "$hpid" || fail home-router "cannot move wlan2"
    hn() { nsenter -t "$hpid" -n "$@"; }
    hn ip link set lo up
    hn ip link set wlan2 up
    hn ip addr add 10.77.0.1/24 dev wlan2
    printf 'interface=wlan2\ndriver=nl80211\nssid=HomeNet\nhw_mode=g\nchannel=11\nieee80211n=1\nwpa=2\nwpa_key_mgmt=WPA-PSK\nrsn_pairwise=CCMP\nwpa_passphrase=home-pass-5678\n' >/run/home-hostapd.conf
    hn hostapd -B -P /run/home-hostapd.pid /run/home-hostapd.conf >/run/home-hostapd.log 2>&1 || fail home-router "hostapd: $(tail -3 /run/home-hostapd.log)"
    hn dnsmasq --conf-file=/dev/null --port=0 --interface=wlan2 --bind-interfaces \
        --dhcp-range=10.77.0.100,10.77.0.150,255.255.255.0,1h --dhcp-option=option:router,10.77.0.1 \
        --dhcp-leasefile=/run/home.leases --pid-file=/run/home-dnsmasq.pid || fail home-router "dnsmasq"
    # The uplink: each connection to 10.77.0.1:8333 (S3) or :8080 (the webhook receiver) is
    # relayed by nc, run in the dash cam's namespace (the only one with the wired interface),
    # to the host's server through qemu's guestfwd.
    for p in 8333 8080; do
        printf '#!/bin/sh\nexec nsenter -t 1 -n nc 10.0.2.100 %s\n' "$p" >/run/home-relay-$p
        chmod +x /run/home-relay-$p
        hn nc -ll -p "$p" -e /run/home-relay-$p >/run/home-relay-$p.log 2>&1 &
    done
    say "home router up: HomeNet on channel 11 (2462 MHz), 10.77.0.1 (uptime $(up) s)"
}

wait_home() {  # wait_home SECONDS: wifi-home says "home"
    j=0
    while [ $j -lt "$1" ]; do
        case "$(home_state)" in home*) return 0 ;; esac
        sleep 1; j=$((j + 1))
    done
    return 1
}

if [ "$phase" = 1 ]; then
    # The radio's limit, as the Pi's: one AP and one station, on one channel.
    c=$(iw phy "$(cat /sys/class/net/wlan0/phy80211/name)" info | grep -oE '#\{ [a-zA-Z, -]* \} <= [0-9]+|#channels <= [0-9]+' | head -n 4 | tr '\n' ' ')
    case "$c" in *"#channels <= 1"*) ok radio-one-channel "$c" ;; *) fail radio-one-channel "$c" ;; esac
    # --- away: the AP on its own channel; the station finds nothing -------------------------
    s=$(home_state) f=$(ap_freq)
    if [ "$s" = away ] && [ "$f" = 2437 ]; then ok away "home.state '$s', the AP on $f MHz"; else fail away "home.state '$s', AP $f MHz"; fi
    # --- the phone joins the dash cam --------------------------------------------------------
    unshare -n sleep 100000 &
    ppid_=$!
    sleep 1
    iw phy "$(cat /sys/class/net/wlan1/phy80211/name)" set netns "$ppid_" || fail phone-netns
    pn() { nsenter -t "$ppid_" -n "$@"; }
    pn ip link set lo up
    pn ip link set wlan1 up
    printf 'network={\n ssid="Car Cam"\n psk="car-pass-1234"\n key_mgmt=WPA-PSK\n}\n' >/run/phone.conf
    pn wpa_supplicant -i wlan1 -c /run/phone.conf >/run/phone.log 2>&1 &
    j=0
    while ! grep -q CTRL-EVENT-CONNECTED /run/phone.log && [ $j -lt 60 ]; do sleep 1; j=$((j + 1)); done
    pn ip addr add 192.168.4.77/24 dev wlan1
    health() {  # health: /health from the phone, over the dash cam's Wi-Fi
        printf 'GET /health HTTP/1.1\r\nHost: 192.168.4.1\r\nConnection: close\r\n\r\n' |
            pn timeout 10 nc 192.168.4.1 80 2>&1 | tr -d '\r' | tail -n 1
    }
    h=$(health)
    case "$h" in *'"status":"ok"'*) ok phone-joined "WPA2 to the dash cam, /health over Wi-Fi" ;; *) fail phone-joined "$(tail -3 /run/phone.log) / $h" ;; esac

    # --- an event while away: its alert waits in the outbox (the host set a webhook) ----------
    i=0
    while [ ! -f "$DATA/alerts.conf" ] && [ $i -lt 120 ]; do sleep 1; i=$((i + 1)); done
    pw=$(cat "$DATA/secret")
    r=$(wget -qO- --header "Authorization: Bearer $pw" --header 'Content-Type: application/json' --post-data '{"kind":"button"}' http://127.0.0.1/api/incidents 2>&1)
    sleep 5   # the watcher (every 2 s) queues it, the sender tries and finds no network
    a=$(wget -qO- --header "Authorization: Bearer $pw" http://127.0.0.1/api/status 2>/dev/null | grep -o '"alerts":{[^}]*}')
    case "$a" in
        *'"queued":'[1-9]*'"sent":0,'*) ok alert-queued-away "Save incident; $a" ;;
        *) fail alert-queued-away "$a; POST /api/incidents: $r" ;;
    esac

    # --- the home network appears on another channel -----------------------------------------
    home_up
    t0=$(up)
    if wait_home 180; then
        ok home-joined "$(home_state) after $(secs "$t0") s"
    else
        fail home-joined "$(home_state); $(tail -5 "$RUN/wpa_home.log" 2>/dev/null)"
    fi
    t1=$(up)
    f=$(ap_freq)
    sf=$(wpa_cli -p "$RUN/wpa_home" -i sta0 status 2>/dev/null | sed -n 's/^freq=//p')
    if [ "$f" = 2462 ] && [ "$sf" = 2462 ]; then
        ok ap-rehomed "the AP and the station both on $f MHz"
    else
        fail ap-rehomed "AP $f MHz, station $sf MHz"
    fi
    grep "wifi-home" "$RUN/boot.log" | tail -n 4
    # --- the phone reconnects by itself ------------------------------------------------------
    j=0
    while [ "$(grep -c CTRL-EVENT-CONNECTED /run/phone.log)" -lt 2 ] && [ $j -lt 120 ]; do sleep 0.5; j=$((j + 1)); done
    n=$(grep -c CTRL-EVENT-CONNECTED /run/phone.log)
    h=$(health)
    case "$n|$h" in
        [2-9]*'"status":"ok"'*) ok phone-rejoined "within $(secs "$t1") s of the move; /health over Wi-Fi again" ;;
        *) fail phone-rejoined "$n connection(s); $(tail -3 /run/phone.log) / $h" ;;
    esac
    say "home ready (uptime $(up) s)"
    # The host watches the offload and cuts the power mid-upload.
    sleep 100000
fi

if [ "$phase" = 2 ]; then
    home_up
    t0=$(up)
    if wait_home 180; then ok home-joined "$(home_state) after $(secs "$t0") s"; else fail home-joined "$(home_state)"; fi
    say "home ready (uptime $(up) s)"
    # The host names the objects it holds once the resumed upload verified.
    timeout 600 nc -l -p 9000 </dev/null >/run/objects 2>/dev/null
    while read -r name; do
        [ -n "$name" ] || continue
        u=${name##*_}
        u=$(echo "${u%.seg}" | sed 's/^0*//')
        m=$(head -c "${u:-0}" "$DATA/segments/$name" 2>/dev/null | md5sum | cut -d' ' -f1)
        echo "BBTEST-MD5 $name $m"
    done </run/objects
    say "done"
    poweroff
fi
