# The guest half of scripts/qemu/appliance-test (busybox sh, as root, in the appliance image;
# handed in through qemu's firmware config and started at the end of rcS by the CI image's
# hook). The same script runs on every boot of one qemu process; /data/test/boots says which.
# Markers: "BBTEST: <name> ok|FAIL ..." on the console; the host judges them.
#   boot 1  first boot: /data grown + ext4 + noatime, writing to / fails, recording, the Wi-Fi
#           AP for real (wrong passphrase refused; right one: DHCP, DNS, portal probe,
#           /health), then waits for the host's dashboard login checks, reboots
#   boot 2  the clock did not go back behind the saved time; footage from boot 1 still
#           verifies; SIGSTOP blackbox -> the watchdog must reset
#   boot 3  recording resumed by itself; verify; power off
# shellcheck shell=sh
export PATH=/usr/bin:/bin:/usr/sbin:/sbin
say() { echo "BBTEST: $*"; }
ok() { say "$1 ok${2:+ $2}"; }
fail() { say "$1 FAIL${2:+ $2}"; }
up() { cut -d' ' -f1 /proc/uptime; }
DATA=/data/blackbox
mkdir -p /data/test
n=$(cat /data/test/boots 2>/dev/null || echo 0)
n=$((n + 1))
echo "$n" >/data/test/boots
sync
echo
say "boot $n (uptime $(up) s)"

wait_durable() {  # the recorder's /health shows a durable frame (up to 90 s)
    i=0
    while [ $i -lt 180 ]; do
        h=$(wget -qO- http://127.0.0.1/health 2>/dev/null)
        case "$h" in *'"durable_seq":'[0-9]*) echo "$h"; return 0 ;; esac
        sleep 0.5; i=$((i + 1))
    done
    return 1
}

verify() {  # verify NAME: every closed segment verifies (blackbox verify --json on a copy:
    # the live store's open segment changes under the reader, so it is left out)
    rm -rf /data/test/v
    mkdir -p /data/test/v/segments
    cp "$DATA"/segments/*.seg /data/test/v/segments/
    v=$(blackbox verify /data/test/v --json 2>/dev/null)
    rm -rf /data/test/v
    case "$v" in
        *'"ok":true'*) ok "$1" "$(echo "$v" | sed 's/.*"frames":\([0-9]*\).*"first_seq":\([0-9]*\).*/frames=\1 first_seq=\2/')" ;;
        *) fail "$1" "$v" ;;
    esac
}

phase=$(cat /sys/firmware/qemu_fw_cfg/by_name/opt/blackbox/phase/raw 2>/dev/null)
if [ "$phase" = damaged ]; then
    # A later qemu run: the host zeroed the data partition's primary ext4 superblock.
    echo
    say "boot damaged (uptime $(up) s)"
    case "$(grep " /data " /proc/mounts)" in *" ext4 "*) ok data-mounted ;; *) fail data-mounted ;; esac
    e=$(tr -d '\r' </boot/blackbox-errors.txt 2>/dev/null)
    case "$e" in *"no ext4 superblock"*) ok damage-reported-on-boot-partition ;; *) fail damage-reported-on-boot-partition "$e" ;; esac
    case "$e" in *REFORMATTING*) fail repaired-not-reformatted "$e" ;; *) ok repaired-not-reformatted ;; esac
    first=$(awk 'NR == 2 {print $1}' /data/test/ls1 2>/dev/null)
    if [ -n "$first" ] && blackbox ls "$DATA" 2>/dev/null | grep -q "^$first"; then ok footage-kept-after-repair "$first"; else fail footage-kept-after-repair "first=$first"; fi
    if h=$(wait_durable); then ok recording-after-repair "$h"; else fail recording-after-repair; fi
    verify verify-after-repair
    say "done"
    poweroff
    exit 0
fi

if [ "$n" = 1 ]; then
    # --- the data partition ------------------------------------------------------------------
    m=$(grep " /data " /proc/mounts)
    case "$m" in
        *" ext4 "*noatime*) ok data-ext4-noatime ;;
        *) fail data-ext4-noatime "$m" ;;
    esac
    mib=$(( $(cat /sys/class/block/vda3/size) / 2048 ))
    if [ "$mib" -gt 500 ]; then ok data-grown "${mib}MiB"; else fail data-grown "${mib}MiB"; fi
    # --- read-only root ---------------------------------------------------------------------
    if (echo x >/bbtest-write) 2>/dev/null || mkdir /bbtest-dir 2>/dev/null; then
        fail root-read-only
    else
        case "$(grep ' / ' /proc/mounts)" in *squashfs*) ok root-read-only ;; *) fail root-read-only "$(grep ' / ' /proc/mounts)" ;; esac
    fi
    # --- recording ----------------------------------------------------------------------------
    if h=$(wait_durable); then ok recording "$h"; else fail recording; fi
    # --- offload's tools: rsync and ssh run (their libraries are there), and the CA bundle ------
    rv=$(rsync --version 2>&1 | head -n 1)
    sv=$(ssh -V 2>&1)
    ncert=$(grep -c 'BEGIN CERTIFICATE' /etc/ssl/certs/ca-certificates.crt 2>/dev/null)
    case "$rv|$sv" in
        "rsync  version"*"|OpenSSH"*) if [ "${ncert:-0}" -ge 100 ]; then ok offload-tools "$rv; $sv; $ncert CA certificates"; else fail offload-tools "$ncert CA certificates"; fi ;;
        *) fail offload-tools "rsync: $rv; ssh: $sv" ;;
    esac

    # --- Wi-Fi access point, with a client on the second radio in its own network namespace ---
    i=0
    while [ ! -f /run/blackbox/dnsmasq.pid ] && [ $i -lt 90 ]; do sleep 1; i=$((i + 1)); done
    [ -f /run/blackbox/dnsmasq.pid ] && ok ap-up || fail ap-up "$(cat /run/blackbox/hostapd.log /run/blackbox/dnsmasq.log 2>/dev/null | tail -5)"
    val() { tr -d '\r' </boot/blackbox.txt | sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*//p" | sed 's/[[:space:]]*$//' | tail -n 1; }
    ssid=$(val wifi_ssid)
    psk=$(val wifi_passphrase)
    c=$(grep -E '^(ssid|country_code)=' /run/blackbox/hostapd.conf | tr '\n' ' ')
    case "$c" in "ssid=My Car Cam country_code=DE "*) ok hostapd-conf "$c" ;; *) fail hostapd-conf "$c" ;; esac
    unshare -n sleep 100000 &
    nspid=$!
    sleep 1
    phy=$(cat /sys/class/net/wlan1/phy80211/name)
    iw phy "$phy" set netns "$nspid" || fail client-netns
    ns() { nsenter -t "$nspid" -n "$@"; }
    ns ip link set lo up
    ns ip link set wlan1 up
    join() {  # join PSK SECONDS: 0 when the 4-way handshake completed within SECONDS
        printf 'network={\n ssid="%s"\n psk="%s"\n key_mgmt=WPA-PSK\n proto=RSN\n pairwise=CCMP\n}\n' "$ssid" "$1" >/run/wpa.conf
        ns wpa_supplicant -i wlan1 -c /run/wpa.conf >/run/wpa.log 2>&1 &
        wpa=$!
        j=0
        while [ $j -lt "$2" ]; do
            grep -q "CTRL-EVENT-CONNECTED" /run/wpa.log && return 0
            sleep 1; j=$((j + 1))
        done
        return 1
    }
    leave() { kill "$wpa" 2>/dev/null; wait "$wpa" 2>/dev/null; sleep 1; }
    if join "not-the-$psk" 20; then
        fail wrong-passphrase-refused "$(grep -E 'CONNECTED' /run/wpa.log)"
    elif grep -qE "4-Way Handshake failed|TEMP-DISABLED.*WRONG_KEY" /run/wpa.log; then
        ok wrong-passphrase-refused "$(grep -oE 'CTRL-EVENT-SSID-TEMP-DISABLED.*reason=[A-Z_]+' /run/wpa.log | head -n 1)"
    else
        fail wrong-passphrase-refused "no handshake attempt seen: $(tail -3 /run/wpa.log)"
    fi
    leave
    t0=$(up)
    if join "$psk" 40; then ok client-associated "WPA2 handshake done after $(awk -v a="$t0" -v b="$(up)" 'BEGIN{printf "%.1f", b-a}') s"; else fail client-associated "$(tail -5 /run/wpa.log)"; fi
    cat >/run/udhcpc.sh <<'EOS'
#!/bin/sh
case "$1" in
    bound|renew)
        ip addr add "$ip/${mask:-24}" dev "$interface"
        echo "ip=$ip router=$router dns=$dns" >/run/lease
        ;;
esac
EOS
    chmod +x /run/udhcpc.sh
    rm -f /run/lease
    ns udhcpc -i wlan1 -n -q -t 10 -T 2 -s /run/udhcpc.sh >/run/udhcpc.log 2>&1
    lease=$(cat /run/lease 2>/dev/null)
    case "$lease" in
        "ip=192.168.4."*"router=192.168.4.1 dns=192.168.4.1"*) ok dhcp "$lease" ;;
        *) fail dhcp "$lease $(tail -3 /run/udhcpc.log)" ;;
    esac
    name="bbtest-$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n').example.org"
    a=$(ns nslookup "$name" 192.168.4.1 2>&1)
    if echo "$a" | sed -n '/^Name:/,$p' | grep -q "Address: 192.168.4.1"; then ok dns-any-name "$name"; else fail dns-any-name "$a"; fi
    a=$(ns nslookup connectivitycheck.gstatic.com 192.168.4.1 2>&1)
    echo "$a" | sed -n '/^Name:/,$p' | grep -q "Address: 192.168.4.1" && ok dns-probe-host || fail dns-probe-host "$a"
    # The Android probe, sent where DNS said, with its real Host: a redirect to the login page.
    # (Raw HTTP through nc: busybox's static wget crashes in the client's namespace.)
    get() {  # get HOST PATH: the raw response from 192.168.4.1:80
        printf 'GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$2" "$1" |
            ns timeout 10 nc 192.168.4.1 80 2>&1 | tr -d '\r'
    }
    p=$(get connectivitycheck.gstatic.com /generate_204)
    l=$(get 192.168.4.1 /login)
    if echo "$p" | grep -q "^HTTP/1.1 302" && echo "$p" | grep -qi "^Location: http://192.168.4.1/login$" &&
        echo "$l" | grep -q "^HTTP/1.1 200" && echo "$l" | grep -qi "<form"; then
        ok captive-portal "302 -> http://192.168.4.1/login, login page fetched"
    else
        fail captive-portal "$(echo "$p" | head -5) / $(echo "$l" | head -1)"
    fi
    hl=$(get 192.168.4.1 /health)
    case "$hl" in *'"status":"ok"'*) ok health-over-wifi "$(echo "$hl" | tail -n 1)" ;; *) fail health-over-wifi "$hl" ;; esac
    leave
    kill "$nspid"

    # --- the host logs in through hostfwd, then connects to :9000 -----------------------------
    say "waiting for the host"
    timeout 180 nc -l -p 9000 </dev/null >/dev/null 2>&1 || fail host-handshake
    blackbox ls "$DATA" >/data/test/ls1 2>/dev/null
    head -n 3 /data/test/ls1
    # The last known time, a day ahead (as if the dashboard had set the clock and the board
    # then lost it): boot 2's clock must not be earlier. Saves never lower it.
    fut=$(( $(date +%s) + 86400 ))
    echo "$fut" >/data/clock
    echo "$fut" >/data/test/future
    sync
    # The host now reboots the device from the dashboard (POST /api/device/reboot): init's
    # shutdown stops blackbox cleanly. Only if that never comes does this script reboot.
    say "ready for the reboot (uptime $(up) s)"
    sleep 90
    fail reboot-from-dashboard "no reboot within 90 s of the request"
    reboot
    exit 0
fi

if [ "$n" = 2 ]; then
    # The settings saved from the dashboard on boot 1 are in blackbox.txt and running now.
    if grep -q '^ssid=Family Car$' /run/blackbox/hostapd.conf && grep -q '^country_code=FR$' /run/blackbox/hostapd.conf &&
        [ ! -e "$DATA/credentials.pending" ] && [ "$(cat "$DATA/secret")" = "family car 2026" ]; then
        ok dashboard-settings-applied "hostapd.conf: ssid Family Car, country FR; the pending file gone; the new dashboard password in use"
    else
        fail dashboard-settings-applied "$(grep -E '^(ssid|country_code)=' /run/blackbox/hostapd.conf | tr '\n' ' ') pending=$(ls "$DATA/credentials.pending" 2>&1)"
    fi
    # The home Wi-Fi from the dashboard: wpa_supplicant's station config (the SSID in hex,
    # quotes and all), and wifi-home looking for it (none in range here).
    hex=$(printf '%s' 'Home "Net"' | od -An -tx1 | tr -d ' \n')
    i=0
    while [ ! -f /run/blackbox/home.state ] && [ $i -lt 60 ]; do sleep 1; i=$((i + 1)); done
    if grep -q "^    ssid=$hex\$" /run/blackbox/wpa_home.conf && grep -q '^    psk="home pass 2026"$' /run/blackbox/wpa_home.conf &&
        [ "$(cat /run/blackbox/home.state)" = away ] && [ -e /sys/class/net/sta0 ]; then
        ok home-wifi-applied "wpa_home.conf: ssid $hex; sta0 added; home.state away"
    else
        fail home-wifi-applied "$(grep -v psk /run/blackbox/wpa_home.conf 2>&1 | tr '\n' ' ') state=$(cat /run/blackbox/home.state 2>&1)"
    fi
    now=$(date +%s) fut=$(cat /data/test/future)
    if [ "$now" -ge "$fut" ]; then ok clock-not-backwards "$(date -u +%Y-%m-%dT%H:%M:%SZ) >= saved $fut"; else fail clock-not-backwards "now $now < saved $fut"; fi
    if h=$(wait_durable); then ok recording "$h"; else fail recording; fi
    # Segments of boot 1 are still there and every stored frame verifies.
    first=$(awk 'NR == 2 {print $1}' /data/test/ls1)
    if [ -n "$first" ] && blackbox ls "$DATA" 2>/dev/null | grep -q "^$first"; then ok footage-kept "$first"; else fail footage-kept "first=$first"; fi
    verify verify-boot2
    sleep 3   # a few keepalives while frames flow
    pid=$(pidof blackbox)
    say "sigstop $pid (uptime $(up) s)"
    kill -STOP $pid
    sleep 60
    fail watchdog-reset "still running 60 s after SIGSTOP"
    kill -CONT $pid
    exit 0
fi

if [ "$n" = 3 ]; then
    ok watchdog-reset "boot 3 after the SIGSTOP"
    if h=$(wait_durable); then ok recording-resumed "$h (uptime $(up) s)"; else fail recording-resumed; fi
    verify verify-boot3
    say "done"
    poweroff
fi
