/*
 * usbip-uvc: test tooling for blackbox's MJPEG passthrough test against the kernel's uvcvideo
 * driver (scripts/qemu/uvc-test). Runs inside the qemu guest; everything stays in the guest
 * (TCP over its own 127.0.0.1).
 *
 *   usbip-uvc camera DIR [FPS [LEAD_MS]]
 *                                A USB webcam on vhci-hcd: a user-space USB/IP device that
 *                                answers vhci-hcd's URBs as a UVC 1.0 camera with one MJPEG
 *                                format (640x360) and an isochronous streaming endpoint, and
 *                                streams DIR/0001.jpg, 0002.jpg, ... once each, in order, at FPS
 *                                (30), the first LEAD_MS (0) after streaming starts (empty
 *                                packets until then). uvcvideo binds it like any USB webcam.
 *   usbip-uvc camera-h264 DIR [FPS [LEAD_MS]]
 *                                The same webcam as UVC 1.1 with one frame-based H.264 format
 *                                (VS_FORMAT_FRAME_BASED, GUID "H264": uvcvideo's V4L2_PIX_FMT_H264,
 *                                research h264.md section 2), streaming DIR/0001.h264, ... (one
 *                                Annex-B access unit each) the same way.
 *   usbip-uvc vudc-attach        Connects the usbip-vudc.0 UDC (a configfs gadget bound to it)
 *                                to vhci-hcd over a loopback TCP pair.
 *   usbip-uvc feed DEV DIR       The user-space half of a configfs UVC gadget (usb_f_uvc):
 *                                answers probe/commit, queues DIR's JPEGs on STREAMON.
 *
 * Why both: the gadget route (usb_f_uvc on usbip-vudc, attached to vhci-hcd) enumerates, but
 * usbip-vudc completes every isochronous URB with -EXDEV without moving data (see
 * scripts/qemu/README.md), and usb_f_uvc only streams isochronously. The camera mode takes
 * the gadget's place on the same vhci-hcd/usbcore/uvcvideo path.
 *
 * Built static for aarch64 by scripts/qemu/uvc-test. Test tooling, not part of the product.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/usb/ch9.h>
#include <linux/usb/g_uvc.h>
#include <linux/usb/video.h>
#include <linux/videodev2.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WIDTH 640
#define HEIGHT 360
#define MAX_FRAME (WIDTH * HEIGHT * 2)   /* dwMaxVideoFrameSize: room for any JPEG here */
#define PKT 3072                         /* iso wMaxPacketSize 1024 x 3 transactions */

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "usbip-uvc: ");
	vfprintf(stderr, fmt, ap);
	if (errno) fprintf(stderr, ": %s", strerror(errno));
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "usbip-uvc: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static double cpu_s(void)
{
	struct rusage u;
	getrusage(RUSAGE_SELF, &u);
	return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

/* --- the fed frames: DIR/0001.jpg, DIR/0002.jpg, ... (or .h264) ---------------------------- */

struct frame { uint8_t *data; size_t len; };
static struct frame *frames;
static size_t nframes;
/* camera-h264: UVC 1.1, a frame-based H.264 format, access units fed instead of JPEGs. */
static int h264;

static void load_frames(const char *dir)
{
	for (size_t i = 1;; i++) {
		char path[512];
		snprintf(path, sizeof path, "%s/%04zu.%s", dir, i, h264 ? "h264" : "jpg");
		int fd = open(path, O_RDONLY);
		if (fd < 0) break;
		struct stat st;
		if (fstat(fd, &st) < 0) die("stat %s", path);
		if (st.st_size <= 0 || st.st_size > MAX_FRAME) { errno = 0; die("%s: bad size", path); }
		frames = realloc(frames, (nframes + 1) * sizeof *frames);
		uint8_t *b = malloc(st.st_size);
		if (!frames || !b) die("out of memory");
		if (read(fd, b, st.st_size) != st.st_size) die("read %s", path);
		close(fd);
		frames[nframes++] = (struct frame){ b, (size_t)st.st_size };
	}
	if (!nframes) { errno = 0; die("no frames in %s (want 0001.%s, ...)", dir, h264 ? "h264" : "jpg"); }
}

/* --- sockets and sysfs ---------------------------------------------------------------------- */

static void read_full(int fd, void *buf, size_t n)
{
	uint8_t *p = buf;
	while (n) {
		ssize_t r = read(fd, p, n);
		if (r == 0) { errno = 0; die("usbip connection closed"); }
		if (r < 0) { if (errno == EINTR) { if (stop) exit(0); continue; } die("read"); }
		p += r; n -= (size_t)r;
	}
}

static void write_full(int fd, const void *buf, size_t n)
{
	const uint8_t *p = buf;
	while (n) {
		ssize_t r = write(fd, p, n);
		if (r < 0) { if (errno == EINTR) continue; die("write"); }
		p += r; n -= (size_t)r;
	}
}

/* A connected TCP pair on the guest's own 127.0.0.1 (usbip wants SOCK_STREAM sockets). */
static void tcp_pair(int *a, int *b)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof sa;
	int l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&sa, &sl) < 0)
		die("listen on 127.0.0.1");
	*a = socket(AF_INET, SOCK_STREAM, 0);
	if (*a < 0 || connect(*a, (struct sockaddr *)&sa, sizeof sa) < 0) die("connect 127.0.0.1");
	*b = accept(l, NULL, NULL);
	if (*b < 0) die("accept");
	close(l);
	int one = 1;
	setsockopt(*a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(*b, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void sysfs_write(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY);
	if (fd < 0) die("open %s", path);
	if (write(fd, text, strlen(text)) < 0) die("write '%s' to %s", text, path);
	close(fd);
	say("%s <- %s", path, text);
}

/* vhci-hcd: "PORT SOCKFD DEVID SPEED"; port 0 = the first high-speed root-hub port. The devid
 * only tags the URBs sent to the device side (busnum << 16 | devnum on a real usbip host). */
static void vhci_attach(int fd)
{
	char buf[64];
	snprintf(buf, sizeof buf, "0 %d %u %d", fd, (1u << 16) | 2u, USB_SPEED_HIGH);
	sysfs_write("/sys/devices/platform/vhci_hcd.0/attach", buf);
}

/* --- USB/IP wire format (big-endian; drivers/usb/usbip/usbip_common.h) ---------------------- */

enum { CMD_SUBMIT = 1, CMD_UNLINK = 2, RET_SUBMIT = 3, RET_UNLINK = 4 };
enum { DIR_OUT = 0, DIR_IN = 1 };

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }
static void put32(uint8_t *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }
static void put16le(uint8_t *p, uint16_t v) { p[0] = v; p[1] = v >> 8; }
static void put32le(uint8_t *p, uint32_t v) { p[0] = v; p[1] = v >> 8; p[2] = v >> 16; p[3] = v >> 24; }

/* --- the camera's descriptors (UVC 1.0, high speed) ------------------------------------------ */

#define VS_INTF 1
#define EP_ISO_IN 0x81
#define INTERVAL_100NS 333333u   /* 30 fps */

static const uint8_t dev_desc[18] = {
	18, USB_DT_DEVICE, 0x00, 0x02,      /* USB 2.0 */
	0xef, 0x02, 0x01, 64,               /* misc / IAD, ep0 64 bytes */
	0x09, 0x12, 0x01, 0x00,             /* 1209:0001 (pid.codes test id) */
	0x00, 0x01, 1, 2, 0, 1,             /* bcdDevice 1.00, strings 1 2, one configuration */
};

static uint8_t cfg[256];
static size_t cfg_len;

static void add(const uint8_t *d, size_t n) { memcpy(cfg + cfg_len, d, n); cfg_len += n; }

static void build_config(void)
{
	const uint8_t c[9] = { 9, USB_DT_CONFIG, 0, 0, 2, 1, 0, 0x80, 250 };
	const uint8_t iad[8] = { 8, USB_DT_INTERFACE_ASSOCIATION, 0, 2, 0x0e, 0x03, 0, 2 };
	const uint8_t vc_if[9] = { 9, USB_DT_INTERFACE, 0, 0, 0, 0x0e, 0x01, 0, 2 };
	uint8_t vc_hdr[13] = { 13, 0x24, 0x01, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 1, VS_INTF };
	const uint8_t it[18] = { 18, 0x24, 0x02, 1, 0x01, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0 };
	const uint8_t ot[9] = { 9, 0x24, 0x03, 2, 0x01, 0x01, 0, 1, 0 };
	const uint8_t vs_if0[9] = { 9, USB_DT_INTERFACE, VS_INTF, 0, 0, 0x0e, 0x02, 0, 0 };
	uint8_t vs_hdr[14] = { 14, 0x24, 0x01, 1, 0, 0, EP_ISO_IN, 0, 2, 0, 0, 0, 1, 0 };
	const uint8_t fmt_mjpeg[11] = { 11, 0x24, 0x06, 1, 1, 0x01, 1, 0, 0, 0, 0 };
	/* VS_FORMAT_FRAME_BASED (UVC 1.1): GUID "H264", 16 bpp, default frame 1, no aspect, not
	 * interlaced, no copy protection, bVariableSize 1 (uvcvideo: compressed). */
	const uint8_t fmt_h264[28] = { 28, 0x24, 0x10, 1, 1,
		'H', '2', '6', '4', 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71,
		16, 1, 0, 0, 0, 0, 1 };
	const uint8_t *fmt = h264 ? fmt_h264 : fmt_mjpeg;
	const size_t fmt_len = h264 ? sizeof fmt_h264 : sizeof fmt_mjpeg;
	/* VS_FRAME_MJPEG (30 bytes) or VS_FRAME_FRAME_BASED (30 bytes: the interval at byte 17,
	 * bFrameIntervalType at 21, dwBytesPerLine 0 at 22, the interval list at 26). */
	uint8_t frm[30] = { 30, 0x24, h264 ? 0x11 : 0x07, 1, 0 };
	const uint8_t color[6] = { 6, 0x24, 0x0d, 1, 1, 4 };
	const uint8_t vs_if1[9] = { 9, USB_DT_INTERFACE, VS_INTF, 1, 1, 0x0e, 0x02, 0, 0 };
	const uint8_t ep[7] = { 7, USB_DT_ENDPOINT, EP_ISO_IN, 0x05, 0x00, 0x14, 1 }; /* iso async, 1024x3 */

	if (h264) put16le(vc_hdr + 3, 0x0110);       /* bcdUVC 1.1: frame-based formats */
	put16le(vc_hdr + 5, sizeof vc_hdr + sizeof it + sizeof ot);
	put32le(vc_hdr + 7, 48000000);
	put16le(frm + 5, WIDTH);
	put16le(frm + 7, HEIGHT);
	put32le(frm + 9, 8u * 30 * 40000);            /* dwMinBitRate */
	put32le(frm + 13, 8u * 30 * MAX_FRAME);       /* dwMaxBitRate */
	if (h264) {
		put32le(frm + 17, INTERVAL_100NS);    /* dwDefaultFrameInterval */
		frm[21] = 1;                          /* one discrete interval */
		put32le(frm + 22, 0);                 /* dwBytesPerLine: 0 for a variable size */
		put32le(frm + 26, INTERVAL_100NS);
	} else {
		put32le(frm + 17, MAX_FRAME);         /* dwMaxVideoFrameBufferSize */
		put32le(frm + 21, INTERVAL_100NS);    /* dwDefaultFrameInterval */
		frm[25] = 1;                          /* one discrete interval */
		put32le(frm + 26, INTERVAL_100NS);
	}
	put16le(vs_hdr + 4, (uint16_t)(sizeof vs_hdr + fmt_len + sizeof frm + sizeof color));

	add(c, 9); add(iad, 8); add(vc_if, 9); add(vc_hdr, 13); add(it, 18); add(ot, 9);
	add(vs_if0, 9); add(vs_hdr, 14); add(fmt, fmt_len); add(frm, 30); add(color, 6);
	add(vs_if1, 9); add(ep, 7);
	put16le(cfg + 2, (uint16_t)cfg_len);
}

static size_t string_desc(int idx, uint8_t *out)
{
	const char *s;
	switch (idx) {
	case 0: out[0] = 4; out[1] = USB_DT_STRING; put16le(out + 2, 0x0409); return 4;
	case 1: s = "blackbox"; break;
	case 2: s = "blackbox usbip-uvc test camera"; break;
	default: return 0;
	}
	size_t n = strlen(s);
	out[0] = (uint8_t)(2 + 2 * n); out[1] = USB_DT_STRING;
	for (size_t i = 0; i < n; i++) put16le(out + 2 + 2 * i, (uint8_t)s[i]);
	return 2 + 2 * n;
}

/* The probe/commit control: 26 bytes in UVC 1.0, 34 in UVC 1.1 (usb_f_uvc). */
static void probe_ctrl(uint8_t *p, uint32_t payload)
{
	memset(p, 0, 34);
	put16le(p + 0, 1);               /* bmHint: dwFrameInterval */
	p[2] = 1; p[3] = 1;              /* format 1, frame 1 */
	put32le(p + 4, INTERVAL_100NS);
	put32le(p + 18, MAX_FRAME);      /* dwMaxVideoFrameSize */
	put32le(p + 22, payload);        /* dwMaxPayloadTransferSize */
	if (h264) p[30] = 3;             /* bmFramingInfo (UVC 1.1): FID and EOF used */
}

/* Probe/commit length: 26 bytes (UVC 1.0) or 34 (UVC 1.1, where uvcvideo takes the
 * frame-based format's buffer size from dwMaxVideoFrameSize). */
static int probe_len(void) { return h264 ? 34 : 26; }

/* --- camera: the USB/IP device side --------------------------------------------------------- */

static int sock;
static int streaming_alt;
/* streaming state */
static size_t next_frame;        /* index of the frame to send next */
static int in_frame;             /* a frame is partly sent */
static size_t frame_pos;
static uint8_t fid;
static uint64_t t0;              /* when frame 0 became due; 0 = not streaming yet */
static uint64_t period_ns, lead_ns;
static size_t frames_sent, frames_aborted;

/* RET_SUBMIT: `actual` bytes transferred; `data` (IN transfers) follows the header. */
static void send_ret_submit(uint32_t seqnum, int32_t status, uint32_t actual, const uint8_t *data,
			    uint32_t np, const uint8_t *iso)
{
	uint32_t len = data ? actual : 0;
	uint8_t h[48] = { 0 };
	put32(h, RET_SUBMIT);
	put32(h + 4, seqnum);
	put32(h + 20, (uint32_t)status);
	put32(h + 24, actual);
	put32(h + 32, np);
	write_full(sock, h, sizeof h);
	if (len) write_full(sock, data, len);
	if (np) write_full(sock, iso, np * 16u);
}

/* A control transfer on ep0. Returns the reply length (IN), 0 (OUT done), -1 (stall). */
static int control(const uint8_t *setup, const uint8_t *out, uint32_t out_len, uint8_t *reply)
{
	uint8_t type = setup[0], req = setup[1];
	uint16_t value = setup[2] | setup[3] << 8, index = setup[4] | setup[5] << 8;
	uint16_t length = setup[6] | setup[7] << 8;
	(void)out; (void)out_len;

	if ((type & USB_TYPE_MASK) == USB_TYPE_STANDARD) {
		switch (req) {
		case USB_REQ_GET_DESCRIPTOR:
			switch (value >> 8) {
			case USB_DT_DEVICE: memcpy(reply, dev_desc, 18); return 18;
			case USB_DT_CONFIG: memcpy(reply, cfg, cfg_len); return (int)cfg_len;
			case USB_DT_STRING: { size_t n = string_desc(value & 0xff, reply); return n ? (int)n : -1; }
			default: return -1;   /* no qualifier, no BOS: a high-speed-only USB 2.0 device */
			}
		case USB_REQ_GET_STATUS: reply[0] = reply[1] = 0; return 2;
		case USB_REQ_SET_CONFIGURATION: say("SET_CONFIGURATION %u", value); return 0;
		case USB_REQ_GET_CONFIGURATION: reply[0] = 1; return 1;
		case USB_REQ_SET_INTERFACE:
			if (index == VS_INTF) {
				say("SET_INTERFACE streaming alt %u", value);
				if (streaming_alt && !value && in_frame) { in_frame = 0; next_frame++; frames_aborted++; fid ^= 1; }
				streaming_alt = value;
			}
			return 0;
		case USB_REQ_GET_INTERFACE: reply[0] = index == VS_INTF ? streaming_alt : 0; return 1;
		case USB_REQ_CLEAR_FEATURE: case USB_REQ_SET_FEATURE: return 0;
		}
		return -1;
	}
	if ((type & USB_TYPE_MASK) == USB_TYPE_CLASS && (index & 0xff) == VS_INTF) {
		uint8_t cs = value >> 8;
		if (cs != UVC_VS_PROBE_CONTROL && cs != UVC_VS_COMMIT_CONTROL) return -1;
		switch (req) {
		case UVC_SET_CUR:
			if (cs == UVC_VS_COMMIT_CONTROL) say("VS_COMMIT_CONTROL: %s %ux%u @ 30 fps", h264 ? "H264" : "MJPEG", WIDTH, HEIGHT);
			return 0;
		case UVC_GET_CUR: case UVC_GET_MIN: case UVC_GET_MAX: case UVC_GET_DEF:
			probe_ctrl(reply, PKT); return probe_len();
		case UVC_GET_LEN: put16le(reply, (uint16_t)probe_len()); return 2;
		case UVC_GET_INFO: reply[0] = 3; return 1;
		}
	}
	say("stall: request %02x %02x value %04x index %04x length %u", type, req, value, index, length);
	return -1;
}

/* Fills one isochronous IN URB: each packet carries a 2-byte UVC payload header and up to
 * PKT - 2 bytes of the current frame, or nothing when no frame is due (frames go out at FPS). */
static void complete_iso(uint32_t seqnum, uint32_t np, uint8_t *iso, uint8_t *buf)
{
	uint64_t now = now_ns();
	uint32_t total = 0;
	int ended = 0;   /* at most one frame ends per URB, as at 30 fps on a real bus */
	for (uint32_t i = 0; i < np; i++) {
		uint8_t *d = iso + 16 * i;
		uint32_t plen = be32(d + 4), n = 0;
		if (!in_frame && !ended && next_frame < nframes && now >= t0 + next_frame * period_ns) {
			in_frame = 1; frame_pos = 0;
		}
		if (in_frame && plen > 2) {
			const struct frame *f = &frames[next_frame];
			size_t chunk = f->len - frame_pos;
			if (chunk > plen - 2) chunk = plen - 2;
			int last = frame_pos + chunk == f->len;
			buf[total] = 2;
			buf[total + 1] = 0x80 | fid | (last ? 0x02 : 0);   /* EOH, FID, EOF */
			memcpy(buf + total + 2, f->data + frame_pos, chunk);
			frame_pos += chunk;
			n = (uint32_t)chunk + 2;
			if (last) {
				in_frame = 0; fid ^= 1; next_frame++; frames_sent++; ended = 1;
				if (frames_sent == nframes) say("all %zu frames sent (cpu %.2f s)", nframes, cpu_s());
			}
		}
		put32(d + 8, n);     /* actual_length */
		put32(d + 12, 0);    /* status */
		total += n;
	}
	send_ret_submit(seqnum, 0, total, buf, np, iso);
}

struct pending { uint32_t seqnum, np; uint64_t arrival; uint8_t *iso; };

/* When to complete the oldest URB: after its packets' time on the bus (125 us each), and,
 * between frames, not before the next frame is due (100 ms apart once all are sent). A real
 * camera would return these URBs with empty packets on time; holding them saves the guest
 * (TCG) hundreds of round trips a second and changes nothing uvcvideo sees in the data. */
static uint64_t urb_due(const struct pending *u, uint64_t bus)
{
	uint64_t d = (u->arrival > bus ? u->arrival : bus) + (uint64_t)u->np * 125000u;
	if (!in_frame) {
		uint64_t f = next_frame < nframes ? t0 + next_frame * period_ns : d + 100000000u;
		if (f > d) d = f;
	}
	return d;
}

static int camera(int argc, char **argv)
{
	if (argc < 3) { errno = 0; die("usage: usbip-uvc camera|camera-h264 DIR [FPS [LEAD_MS]]"); }
	int fps = argc > 3 ? atoi(argv[3]) : 30, lead = argc > 4 ? atoi(argv[4]) : 0;
	if (fps < 1 || fps > 120 || lead < 0 || lead > 60000) { errno = 0; die("bad FPS or LEAD_MS"); }
	period_ns = 1000000000u / (uint64_t)fps;
	lead_ns = (uint64_t)lead * 1000000u;
	load_frames(argv[2]);
	build_config();
	say("%zu frames loaded; %d fps (cpu %.2f s)", nframes, fps, cpu_s());

	int other;
	tcp_pair(&sock, &other);
	vhci_attach(other);
	close(other);   /* vhci-hcd holds its own reference */

	struct pending q[32];
	size_t qn = 0;
	uint64_t bus = 0;      /* the (emulated) bus is busy until then: 125 us per packet */
	static uint8_t buf[32 * 1024 * 16], reply[1024];
	size_t loops = 0, urbs = 0, cmds = 0;
	for (;;) {
		if (stop) break;
		loops++;
		int timeout = -1;
		uint64_t due = 0;
		if (qn) {
			due = urb_due(&q[0], bus);
			uint64_t now = now_ns();
			timeout = due > now ? (int)((due - now + 999999) / 1000000) : 0;
		}
		struct pollfd p = { .fd = sock, .events = POLLIN };
		int r = poll(&p, 1, timeout);
		if (r < 0 && errno != EINTR) die("poll");
		if (r > 0) {
			uint8_t h[48];
			read_full(sock, h, sizeof h);
			cmds++;
			uint32_t cmd = be32(h), seq = be32(h + 4), dir = be32(h + 12), ep = be32(h + 16);
			if (cmd == CMD_SUBMIT) {
				uint32_t len = be32(h + 24), np = be32(h + 32);
				uint8_t *setup = h + 40;
				static uint8_t out[65536];
				if (dir == DIR_OUT && len) {
					if (len > sizeof out) { errno = 0; die("OUT transfer of %u bytes", len); }
					read_full(sock, out, len);
				}
				if (ep == (EP_ISO_IN & 0x7f)) {
					if (dir != DIR_IN || np == 0 || np * PKT > sizeof buf || qn == 32) {
						errno = 0;
						die("unexpected URB on the streaming endpoint (%u packets, %zu queued)", np, qn);
					}
					uint8_t *iso = malloc(np * 16u);
					if (!iso) die("out of memory");
					read_full(sock, iso, np * 16u);
					q[qn++] = (struct pending){ seq, np, now_ns(), iso };
					if (!t0) {
						t0 = now_ns() + lead_ns;
						say("streaming: first isochronous URB (%u packets)", np);
					}
				} else if (ep == 0) {
					int n = control(setup, out, len, reply);
					if (n < 0) send_ret_submit(seq, -EPIPE, 0, NULL, 0, NULL);
					else if (dir == DIR_IN) send_ret_submit(seq, 0, (uint32_t)n < len ? (uint32_t)n : len, reply, 0, NULL);
					else send_ret_submit(seq, 0, len, NULL, 0, NULL);
				} else {
					say("URB for unknown endpoint %u", ep);
					send_ret_submit(seq, -EPIPE, 0, NULL, 0, NULL);
				}
			} else if (cmd == CMD_UNLINK) {
				uint32_t victim = be32(h + 20);
				int32_t status = 0;
				for (size_t i = 0; i < qn; i++) {
					if (q[i].seqnum != victim) continue;
					free(q[i].iso);
					memmove(q + i, q + i + 1, (qn - i - 1) * sizeof *q);
					qn--;
					status = -ECONNRESET;
					break;
				}
				uint8_t u[48] = { 0 };
				put32(u, RET_UNLINK);
				put32(u + 4, seq);
				put32(u + 20, (uint32_t)status);
				write_full(sock, u, sizeof u);
			} else {
				errno = 0; die("unknown usbip command %u", cmd);
			}
		}
		while (qn) {
			due = urb_due(&q[0], bus);
			uint64_t now = now_ns();
			if (now < due) break;
			bus = now;   /* the next URB np x 125 us later: no burst after a stall */
			complete_iso(q[0].seqnum, q[0].np, q[0].iso, buf);
			urbs++;
			free(q[0].iso);
			memmove(q, q + 1, (qn - 1) * sizeof *q);
			qn--;
		}
	}
	say("frames sent: %zu of %zu (aborted by stream-off: %zu); %zu usbip commands, %zu isochronous URBs completed, %zu loop turns; cpu %.2f s",
	    frames_sent, nframes, frames_aborted, cmds, urbs, loops, cpu_s());
	return 0;
}

/* --- vudc-attach ----------------------------------------------------------------------------- */

static int vudc_attach(void)
{
	int a, b;
	tcp_pair(&a, &b);
	char s[16];
	snprintf(s, sizeof s, "%d", a);
	sysfs_write("/sys/devices/platform/usbip-vudc.0/usbip_sockfd", s);
	vhci_attach(b);
	return 0;
}

/* --- feed: the user-space half of a usb_f_uvc gadget ----------------------------------------- */

static int feed(int argc, char **argv)
{
	if (argc < 4) { errno = 0; die("usage: usbip-uvc feed /dev/videoN DIR"); }
	load_frames(argv[3]);
	int fd = open(argv[2], O_RDWR | O_NONBLOCK);
	if (fd < 0) die("open %s", argv[2]);
	for (int t = UVC_EVENT_FIRST; t <= UVC_EVENT_LAST; t++) {
		struct v4l2_event_subscription sub = { .type = (uint32_t)t };
		if (ioctl(fd, VIDIOC_SUBSCRIBE_EVENT, &sub) < 0) die("VIDIOC_SUBSCRIBE_EVENT");
	}
	struct v4l2_format f = { .type = V4L2_BUF_TYPE_VIDEO_OUTPUT };
	f.fmt.pix.width = WIDTH; f.fmt.pix.height = HEIGHT;
	f.fmt.pix.pixelformat = V4L2_PIX_FMT_MJPEG; f.fmt.pix.sizeimage = MAX_FRAME;
	if (ioctl(fd, VIDIOC_S_FMT, &f) < 0) die("VIDIOC_S_FMT");
	say("feed: %s open, %zu frames", argv[2], nframes);

	void *mem[4] = { 0 };
	size_t memlen[4] = { 0 };
	unsigned nbuf = 0;
	size_t fed = 0, done = 0;
	int streaming = 0;
	uint64_t last_report = now_ns();
	while (!stop) {
		struct pollfd p = { .fd = fd, .events = POLLPRI | (streaming ? POLLOUT : 0) };
		if (poll(&p, 1, 1000) < 0 && errno != EINTR) die("poll");
		if (streaming && now_ns() - last_report > 2000000000u) {
			say("feed: %zu buffers queued, %zu completed", fed, done);
			last_report = now_ns();
		}
		if (p.revents & POLLPRI) {
			struct v4l2_event ev;
			if (ioctl(fd, VIDIOC_DQEVENT, &ev) < 0) continue;
			struct uvc_event *ue = (void *)&ev.u.data;
			struct uvc_request_data r = { .length = -EL2HLT };
			switch (ev.type) {
			case UVC_EVENT_CONNECT: say("feed: connect"); break;
			case UVC_EVENT_DISCONNECT: say("feed: disconnect"); break;
			case UVC_EVENT_SETUP: {
				struct usb_ctrlrequest *c = &ue->req;
				uint8_t cs = c->wValue >> 8;
				if ((c->bRequestType & USB_TYPE_MASK) == USB_TYPE_CLASS &&
				    (cs == UVC_VS_PROBE_CONTROL || cs == UVC_VS_COMMIT_CONTROL)) {
					if (c->bRequest == UVC_SET_CUR) r.length = c->wLength;
					else if (c->bRequest == UVC_GET_LEN) { r.length = 2; put16le(r.data, 34); }
					else if (c->bRequest == UVC_GET_INFO) { r.length = 1; r.data[0] = 3; }
					else { probe_ctrl(r.data, 1024); r.length = c->wLength < 34 ? c->wLength : 34; }
				}
				say("feed: setup %02x %02x %04x -> %d", c->bRequestType, c->bRequest, c->wValue, r.length);
				if (ioctl(fd, UVCIOC_SEND_RESPONSE, &r) < 0) say("UVCIOC_SEND_RESPONSE: %s", strerror(errno));
				break;
			}
			case UVC_EVENT_DATA: break;
			case UVC_EVENT_STREAMON: {
				say("feed: STREAMON");
				struct v4l2_requestbuffers rb = { .count = 4, .type = V4L2_BUF_TYPE_VIDEO_OUTPUT, .memory = V4L2_MEMORY_MMAP };
				if (ioctl(fd, VIDIOC_REQBUFS, &rb) < 0) die("VIDIOC_REQBUFS");
				nbuf = rb.count < 4 ? rb.count : 4;
				for (unsigned i = 0; i < nbuf; i++) {
					struct v4l2_buffer b = { .index = i, .type = V4L2_BUF_TYPE_VIDEO_OUTPUT, .memory = V4L2_MEMORY_MMAP };
					if (ioctl(fd, VIDIOC_QUERYBUF, &b) < 0) die("VIDIOC_QUERYBUF");
					mem[i] = mmap(NULL, b.length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, b.m.offset);
					if (mem[i] == MAP_FAILED) die("mmap");
					memlen[i] = b.length;
					const struct frame *fr = &frames[fed % nframes];
					memcpy(mem[i], fr->data, fr->len < b.length ? fr->len : b.length);
					b.bytesused = (uint32_t)fr->len;
					if (ioctl(fd, VIDIOC_QBUF, &b) < 0) die("VIDIOC_QBUF");
					fed++;
				}
				int type = V4L2_BUF_TYPE_VIDEO_OUTPUT;
				if (ioctl(fd, VIDIOC_STREAMON, &type) < 0) die("VIDIOC_STREAMON");
				streaming = 1;
				break;
			}
			case UVC_EVENT_STREAMOFF: {
				say("feed: STREAMOFF (%zu buffers completed)", done);
				int type = V4L2_BUF_TYPE_VIDEO_OUTPUT;
				ioctl(fd, VIDIOC_STREAMOFF, &type);
				for (unsigned i = 0; i < nbuf; i++) munmap(mem[i], memlen[i]);
				struct v4l2_requestbuffers rb = { .count = 0, .type = V4L2_BUF_TYPE_VIDEO_OUTPUT, .memory = V4L2_MEMORY_MMAP };
				ioctl(fd, VIDIOC_REQBUFS, &rb);
				streaming = 0; nbuf = 0;
				break;
			}
			}
		}
		if (streaming && (p.revents & POLLOUT)) {
			struct v4l2_buffer b = { .type = V4L2_BUF_TYPE_VIDEO_OUTPUT, .memory = V4L2_MEMORY_MMAP };
			if (ioctl(fd, VIDIOC_DQBUF, &b) < 0) continue;
			done++;
			const struct frame *fr = &frames[fed % nframes];
			memcpy(mem[b.index], fr->data, fr->len < memlen[b.index] ? fr->len : memlen[b.index]);
			b.bytesused = (uint32_t)fr->len;
			if (ioctl(fd, VIDIOC_QBUF, &b) < 0) die("VIDIOC_QBUF");
			fed++;
		}
	}
	say("feed: %zu buffers completed by the gadget", done);
	return 0;
}

int main(int argc, char **argv)
{
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stderr, NULL, _IOLBF, 0);
	if (argc >= 2 && !strcmp(argv[1], "camera")) return camera(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "camera-h264")) { h264 = 1; return camera(argc, argv); }
	if (argc >= 2 && !strcmp(argv[1], "vudc-attach")) return vudc_attach();
	if (argc >= 2 && !strcmp(argv[1], "feed")) return feed(argc, argv);
	fprintf(stderr, "usage: usbip-uvc camera|camera-h264 DIR [FPS] | vudc-attach | feed /dev/videoN DIR\n");
	return 2;
}
