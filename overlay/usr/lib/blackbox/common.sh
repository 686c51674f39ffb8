# Shared by the appliance scripts (sourced). Board settings come from /etc/blackbox/board.conf.
# shellcheck shell=sh disable=SC2034
export PATH=/usr/bin:/bin:/usr/sbin:/sbin

# --- defaults; a board's /etc/blackbox/board.conf may change any of them ----------------------
BB_DISK=""                 # whole SD card / disk; empty: derived from root= on the kernel command line
BB_BOOT_MNT=/boot          # partition 1 (FAT): config.txt, blackbox.txt
BB_DATA_MNT=/data          # partition 3 (ext4): recordings
BB_DATA_DIR=/data/blackbox # blackbox --data
BB_CREDENTIALS=blackbox.txt
BB_AP_IF=wlan0             # the interface the access point runs on
BB_WIRED_IF=eth0           # a wired interface, configured by DHCP when present
BB_AP_ADDR=192.168.4.1     # the device on the AP subnet (/24)
BB_AP_CHANNEL=6            # the AP's channel until it joins the home Wi-Fi (then the home's)
BB_STA_IF=sta0             # the station interface (home Wi-Fi), added on the AP's radio
BB_HOME_SCAN_S=15          # how often wifi-home checks for the home Wi-Fi while away
BB_WATCHDOG=/dev/watchdog  # empty: no hardware watchdog
BB_LISTEN=0.0.0.0:80
BB_BLACKBOX_ARGS=""        # more `blackbox run` arguments (e.g. --source v4l2:/dev/video0)
BB_CONFIG_DEFAULTS=/etc/blackbox/config.json  # the board's first-boot config.json (optional)
# shellcheck source=/dev/null
[ -f /etc/blackbox/board.conf ] && . /etc/blackbox/board.conf

BB_RUN=/run/blackbox
BB_BOOTLOG=$BB_RUN/boot.log

# say MSG: one line to the console and the boot log (and syslog when it runs).
say() {
    echo "blackbox-boot: $*" >/dev/console 2>/dev/null
    mkdir -p "$BB_RUN" 2>/dev/null
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) [$(cut -d" " -f1 /proc/uptime)] $*" >>"$BB_BOOTLOG" 2>/dev/null
    logger -t blackbox-boot -- "$*" 2>/dev/null
    return 0
}

# loud MSG: an error the owner must see: console, boot log, and blackbox-errors.txt on the
# boot partition (readable on any PC).
loud() {
    say "ERROR: $*"
    if [ -d "$BB_BOOT_MNT" ] && grep -q " $BB_BOOT_MNT " /proc/mounts; then
        mount -o remount,rw "$BB_BOOT_MNT" 2>/dev/null &&
            { echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) $*" >>"$BB_BOOT_MNT/blackbox-errors.txt"; sync; }
        mount -o remount,ro "$BB_BOOT_MNT" 2>/dev/null
    fi
    return 0
}

# The disk holding the root partition, and its partition names (p1 boot, p2 root, p3 data).
find_disk() {
    if [ -z "$BB_DISK" ]; then
        root=""
        for w in $(cat /proc/cmdline); do
            case "$w" in root=/dev/*) root="${w#root=}" ;; esac
        done
        case "$root" in
            /dev/mmcblk*p2|/dev/nvme*p2|/dev/loop*p2) BB_DISK="${root%p2}" ;;
            /dev/*2) BB_DISK="${root%2}" ;;
            *) return 1 ;;
        esac
    fi
    case "$BB_DISK" in
        *[0-9]) BB_PART="${BB_DISK}p" ;;
        *) BB_PART="$BB_DISK" ;;
    esac
    BB_P1="${BB_PART}1"
    BB_P3="${BB_PART}3"
    return 0
}

uptime_s() { cut -d' ' -f1 /proc/uptime; }
