# shellcheck shell=sh
# The gadget route's job inside the guest (busybox sh; see scripts/qemu/uvc-gadget-check): a
# configfs UVC gadget (usb_f_uvc, MJPEG 640x360 @ 30 fps) bound to usbip-vudc.0, attached to
# vhci-hcd over a loopback TCP pair, fed by `usbip-uvc feed`; then blackbox records from the
# uvcvideo node it gets. The data disk holds /data/bin/usbip-uvc and /data/feed/*.jpg.
say() { echo "BLACKBOX-RIG: $*"; }
mount -t ext4 -o noatime /dev/vda /data || { say "mount failed"; exit 10; }
mount -t configfs none /sys/kernel/config
G=/sys/kernel/config/usb_gadget/g1
F=$G/functions/uvc.0
mkdir $G $G/strings/0x409 $G/configs/c.1 || exit 11
echo 0x1209 >$G/idVendor; echo 0x0002 >$G/idProduct
echo blackbox >$G/strings/0x409/manufacturer; echo "blackbox uvc gadget" >$G/strings/0x409/product
mkdir $F $F/control/header/h || exit 12
ln -s $F/control/header/h $F/control/class/fs/h
ln -s $F/control/header/h $F/control/class/ss/h
R=$F/streaming/mjpeg/m/360p
mkdir -p $R
echo 640 >$R/wWidth; echo 360 >$R/wHeight; echo 460800 >$R/dwMaxVideoFrameBufferSize
echo 333333 >$R/dwFrameInterval; echo 333333 >$R/dwDefaultFrameInterval
mkdir $F/streaming/header/h
ln -s $F/streaming/mjpeg/m $F/streaming/header/h/m
for s in fs hs ss; do ln -s $F/streaming/header/h $F/streaming/class/$s/h; done
ln -s $F $G/configs/c.1/uvc.0
echo usbip-vudc.0 >$G/UDC && say "gadget bound to usbip-vudc.0"
gnode="" unode=""
for d in /sys/class/video4linux/video*; do [ "$(cat "$d/name")" = usbip-vudc ] && gnode=/dev/${d##*/}; done
say "gadget node: $gnode"
# usb_f_uvc keeps the gadget disconnected until its V4L2 node is opened: feeder first.
/data/bin/usbip-uvc feed "$gnode" /data/feed 2>/tmp/feed.log &
fpid=$!
sleep 1
/data/bin/usbip-uvc vudc-attach && say "attached"
n=0
while [ -z "$unode" ] && [ $n -lt 150 ]; do
    sleep 0.1; n=$((n + 1))
    for d in /sys/class/video4linux/video*; do
        case "$(cat "$d/name")" in "blackbox uvc gadget"*) [ "$(cat "$d/index")" = 0 ] && unode=/dev/${d##*/} ;; esac
    done
done
say "uvcvideo node: ${unode:-none}"
echo '{"video_codec": "mjpeg", "storage_cap_gb": 0.1, "min_free_mb": 16, "video_res_width": 640, "video_res_height": 360, "video_fps": 30}' >/data/config.json
if [ -n "$unode" ]; then
    blackbox run --data /data --source "v4l2:$unode" --report-durable >/tmp/durable 2>/tmp/run.log &
    bpid=$!
    sleep 6
    kill -TERM $bpid; wait $bpid
    grep -E 'camera|run summary' /tmp/run.log
fi
kill -TERM $fpid; wait $fpid
grep -vE 'setup ' /tmp/feed.log
say "probe/commit requests answered by the feeder: $(grep -c 'setup ' /tmp/feed.log)"
dmesg | grep -E 'uvc|vudc|usb 1-1|vhci_hcd vhci_hcd.0' | grep -v 'uvc_function_set_alt' | tail -n 30
umount /data
