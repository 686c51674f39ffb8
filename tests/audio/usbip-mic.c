/*
 * usbip-mic: test tooling for blackbox's audio test (scripts/qemu/mic-test). Runs inside the
 * qemu guest; everything stays in the guest (TCP over its own 127.0.0.1).
 *
 *   usbip-mic SESSION_S PAUSE_S SESSION_S [...]
 *
 * A USB/IP device on vhci-hcd (full speed) that is a USB Audio Class 1 microphone: an
 * AudioControl interface (input terminal "microphone" -> output terminal "USB streaming") and
 * an AudioStreaming interface whose alternate setting 1 has one asynchronous isochronous IN
 * endpoint, PCM 16-bit mono at 16 kHz. usbcore enumerates it and snd-usb-audio makes a sound
 * card of it (/dev/snd/pcmC*D0c). It answers SET_INTERFACE and the sampling-frequency
 * requests and completes the driver's isochronous URBs with the samples due by then (real
 * time, CLOCK_MONOTONIC, up to 128 a packet: under TCG the guest asks for fewer packets than
 * a real bus carries, so packets carry more samples and the rate stays 16000 a second).
 *
 * The signal: silence with a 20 ms 1 kHz burst at every 16000th sample of a session. Each
 * burst is printed with the time it was "captured": the stream's start (CLOCK_REALTIME at
 * SET_INTERFACE) plus its sample number / 16000, as a microphone's ADC would; it reaches the
 * host later, with the packet that carries it:
 *   usbip-mic: burst K at realtime_ns T
 * Sessions are separated by an unplug (vhci-hcd detach) of PAUSE_S seconds.
 *
 * Built static for aarch64 by scripts/qemu/mic-test. Test tooling, not part of the product.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/usb/ch9.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "usbip-mic: ");
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
	fprintf(stderr, "usbip-mic: ");
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

static uint64_t realtime_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

/* --- sockets, sysfs, USB/IP (as tests/uvc/usbip-uvc.c) ---------------------------------------- */

static int sock = -1;

static int read_full(int fd, void *buf, size_t n)
{
	uint8_t *p = buf;
	while (n) {
		ssize_t r = read(fd, p, n);
		if (r == 0) return -1;
		if (r < 0) { if (errno == EINTR) { if (stop) exit(0); continue; } return -1; }
		p += r; n -= (size_t)r;
	}
	return 0;
}

static void write_full(int fd, const void *buf, size_t n)
{
	const uint8_t *p = buf;
	while (n) {
		ssize_t r = write(fd, p, n);
		if (r < 0) { if (errno == EINTR) continue; return; }
		p += r; n -= (size_t)r;
	}
}

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

static int sysfs_write(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY);
	if (fd < 0) return -1;
	int r = write(fd, text, strlen(text)) < 0 ? -1 : 0;
	close(fd);
	return r;
}

enum { CMD_SUBMIT = 1, CMD_UNLINK = 2, RET_SUBMIT = 3, RET_UNLINK = 4 };
enum { DIR_OUT = 0, DIR_IN = 1 };
static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }
static void put32(uint8_t *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }
static void put16le(uint8_t *p, uint16_t v) { p[0] = v; p[1] = v >> 8; }

#define RATE 16000
#define MAXPKT 256           /* bytes: up to 128 samples a packet */
#define EP_IN 0x81

static const uint8_t dev_desc[18] = {
	18, USB_DT_DEVICE, 0x10, 0x01, 0x00, 0x00, 0x00, 64,
	0x09, 0x12, 0x01, 0xbb, 0x00, 0x01, 1, 2, 0, 1,
};
static const uint8_t cfg_desc[100] = {
	9, USB_DT_CONFIG, 100, 0, 2, 1, 0, 0x80, 50,
	/* AudioControl */
	9, USB_DT_INTERFACE, 0, 0, 0, 0x01, 0x01, 0x00, 0,
	9, 0x24, 0x01, 0x00, 0x01, 30, 0, 1, 1,                 /* header: ADC 1.00, total 30, one AS interface: 1 */
	12, 0x24, 0x02, 1, 0x01, 0x02, 0, 1, 0x00, 0x00, 0, 0,  /* input terminal 1: microphone, mono */
	9, 0x24, 0x03, 2, 0x01, 0x01, 0, 1, 0,                  /* output terminal 2: USB streaming, from 1 */
	/* AudioStreaming: alt 0 (no bandwidth), alt 1 (16-bit mono 16 kHz) */
	9, USB_DT_INTERFACE, 1, 0, 0, 0x01, 0x02, 0x00, 0,
	9, USB_DT_INTERFACE, 1, 1, 1, 0x01, 0x02, 0x00, 0,
	7, 0x24, 0x01, 2, 1, 0x01, 0x00,                        /* AS general: terminal 2, delay 1, PCM */
	11, 0x24, 0x02, 1, 1, 2, 16, 1, 0x80, 0x3e, 0x00,       /* format type I: mono, 2 bytes, 16 bits, 16000 Hz */
	9, USB_DT_ENDPOINT, EP_IN, 0x05, MAXPKT & 0xff, MAXPKT >> 8, 1, 0, 0,   /* iso async IN */
	7, 0x25, 0x01, 0x01, 0, 0, 0,                           /* CS endpoint: sampling frequency control */
};

static size_t string_desc(int idx, uint8_t *out)
{
	const char *s;
	switch (idx) {
	case 0: out[0] = 4; out[1] = USB_DT_STRING; put16le(out + 2, 0x0409); return 4;
	case 1: s = "blackbox"; break;
	case 2: s = "blackbox usbip-mic test microphone"; break;
	default: return 0;
	}
	size_t n = strlen(s);
	out[0] = (uint8_t)(2 + 2 * n); out[1] = USB_DT_STRING;
	for (size_t i = 0; i < n; i++) put16le(out + 2 + 2 * i, (uint8_t)s[i]);
	return 2 + 2 * n;
}

static int streaming;          /* alt setting 1 selected */
static uint64_t t_stream;      /* mono ns of sample 0 of this session */
static uint64_t t_stream_rt;   /* the same, CLOCK_REALTIME */
static uint64_t sent;          /* samples sent this session */
static int session_no;

/* A control transfer. Returns the reply length (IN), 0 (OUT done), -1 (stall). */
static int control(const uint8_t *setup, const uint8_t *out, uint32_t out_len, uint8_t *reply)
{
	uint8_t type = setup[0], req = setup[1];
	uint16_t value = setup[2] | setup[3] << 8, index = setup[4] | setup[5] << 8;
	(void)out; (void)out_len;
	if ((type & USB_TYPE_MASK) == USB_TYPE_STANDARD) {
		switch (req) {
		case USB_REQ_GET_DESCRIPTOR:
			switch (value >> 8) {
			case USB_DT_DEVICE: memcpy(reply, dev_desc, 18); return 18;
			case USB_DT_CONFIG: memcpy(reply, cfg_desc, sizeof cfg_desc); return sizeof cfg_desc;
			case USB_DT_STRING: { size_t n = string_desc(value & 0xff, reply); return n ? (int)n : -1; }
			default: return -1;
			}
		case USB_REQ_GET_STATUS: reply[0] = reply[1] = 0; return 2;
		case USB_REQ_SET_CONFIGURATION: return 0;
		case USB_REQ_GET_CONFIGURATION: reply[0] = 1; return 1;
		case USB_REQ_SET_INTERFACE:
			if (index == 1) {
				int on = value == 1;
				if (on && !streaming) { t_stream = now_ns(); t_stream_rt = realtime_ns(); sent = 0; say("session %d: streaming on", session_no); }
				if (!on && streaming) say("session %d: streaming off after %llu samples", session_no, (unsigned long long)sent);
				streaming = on;
			}
			return 0;
		case USB_REQ_CLEAR_FEATURE: case USB_REQ_SET_FEATURE: return 0;
		case USB_REQ_GET_INTERFACE: reply[0] = (uint8_t)streaming; return 1;
		}
		return -1;
	}
	if ((type & USB_TYPE_MASK) == USB_TYPE_CLASS) {
		/* Sampling frequency (endpoint): SET_CUR 0x01, GET_CUR 0x81 (and MIN/MAX/RES). */
		if ((type & USB_RECIP_MASK) == USB_RECIP_ENDPOINT && (value >> 8) == 0x01) {
			if (req == 0x01) return 0;
			reply[0] = RATE & 0xff; reply[1] = (RATE >> 8) & 0xff; reply[2] = RATE >> 16;
			return 3;
		}
	}
	say("stall: request %02x %02x value %04x index %04x", type, req, value, index);
	return -1;
}

static void send_ret_submit(uint32_t seqnum, int32_t status, uint32_t actual, const uint8_t *data, uint32_t np, const uint8_t *iso)
{
	uint8_t h[48] = { 0 };
	put32(h, RET_SUBMIT);
	put32(h + 4, seqnum);
	put32(h + 20, (uint32_t)status);
	put32(h + 24, actual);
	put32(h + 32, np);
	write_full(sock, h, sizeof h);
	if (data && actual) write_full(sock, data, actual);
	if (np) write_full(sock, iso, np * 16u);
}

static int16_t sample_at(uint64_t n)
{
	uint64_t in = n % RATE;
	return in < RATE / 50 ? (int16_t)(12000.0 * sin(2 * M_PI * 1000.0 * (double)in / RATE)) : 0;
}

/* Fills an isochronous IN URB with the samples due by now, up to MAXPKT a packet. */
static void complete_iso(uint32_t seq, uint32_t np, uint8_t *iso)
{
	static uint8_t buf[64 * MAXPKT];
	uint64_t due = streaming ? (now_ns() - t_stream) * RATE / 1000000000u : sent;
	uint32_t total = 0;
	for (uint32_t i = 0; i < np; i++) {
		uint8_t *d = iso + 16 * i;
		uint32_t room = be32(d + 4) / 2, n = 0;
		if (room > MAXPKT / 2) room = MAXPKT / 2;
		while (streaming && n < room && sent < due) {
			if (sent % RATE == 0)
				say("burst %llu at realtime_ns %llu (sent %.1f ms later)", (unsigned long long)(sent / RATE),
				    (unsigned long long)(t_stream_rt + sent / RATE * 1000000000ull),
				    (double)(realtime_ns() - t_stream_rt - sent / RATE * 1000000000ull) / 1e6);
			int16_t v = sample_at(sent++);
			buf[total + 2 * n] = (uint8_t)v;
			buf[total + 2 * n + 1] = (uint8_t)(v >> 8);
			n++;
		}
		put32(d + 8, 2 * n);                   /* actual_length */
		put32(d + 12, 0);
		total += 2 * n;
	}
	send_ret_submit(seq, 0, total, buf, np, iso);
}

static void attach(void)
{
	int other;
	char buf[64];
	tcp_pair(&sock, &other);
	snprintf(buf, sizeof buf, "0 %d %u %d", other, (1u << 16) | 4u, USB_SPEED_FULL);
	for (int i = 0; sysfs_write("/sys/devices/platform/vhci_hcd.0/attach", buf) < 0; i++) {
		if (i == 100) die("attach to vhci_hcd port 0");
		usleep(100000);
	}
	close(other);
	streaming = 0;
	say("session %d attached at mono_ns %llu", session_no, (unsigned long long)now_ns());
}

static void detach(void)
{
	if (sysfs_write("/sys/devices/platform/vhci_hcd.0/detach", "0") < 0) say("detach: %s", strerror(errno));
	close(sock);
	sock = -1;
	say("session %d detached at mono_ns %llu after %llu samples", session_no, (unsigned long long)now_ns(), (unsigned long long)sent);
}

struct pending { uint32_t seq, np; uint64_t due; uint8_t iso[64 * 16]; };

static void serve(uint64_t until)
{
	static uint8_t out[65536], reply[1024];
	static struct pending q[32];
	size_t qn = 0;
	while (now_ns() < until) {
		if (stop) { detach(); exit(0); }
		int timeout = 50;
		if (qn) {
			uint64_t now = now_ns();
			timeout = q[0].due > now ? (int)((q[0].due - now) / 1000000u) + 1 : 0;
		}
		struct pollfd p = { .fd = sock, .events = POLLIN };
		int r = poll(&p, 1, timeout);
		if (r < 0 && errno != EINTR) die("poll");
		if (r > 0) {
			uint8_t h[48];
			if (read_full(sock, h, sizeof h) < 0) { errno = 0; die("usbip connection closed"); }
			uint32_t cmd = be32(h), seq = be32(h + 4), dir = be32(h + 12), ep = be32(h + 16);
			if (cmd == CMD_SUBMIT) {
				uint32_t len = be32(h + 24), np = be32(h + 32);
				if (dir == DIR_OUT && len) {
					if (len > sizeof out) { errno = 0; die("OUT transfer of %u bytes", len); }
					if (read_full(sock, out, len) < 0) { errno = 0; die("usbip connection closed"); }
				}
				if (ep == (EP_IN & 0x7f) && dir == DIR_IN) {
					if (np == 0 || np > 64 || qn == 32) { errno = 0; die("unexpected URB (%u packets, %zu queued)", np, qn); }
					struct pending *e = &q[qn++];
					e->seq = seq; e->np = np;
					if (read_full(sock, e->iso, np * 16u) < 0) { errno = 0; die("usbip connection closed"); }
					/* Completed np ms after the previous one (a full-speed frame per packet). */
					uint64_t prev = qn > 1 ? q[qn - 2].due : now_ns();
					e->due = (prev > now_ns() ? prev : now_ns()) + np * 1000000ull;
				} else if (ep == 0) {
					int n = control(h + 40, out, dir == DIR_OUT ? len : 0, reply);
					if (n < 0) send_ret_submit(seq, -EPIPE, 0, NULL, 0, NULL);
					else if (dir == DIR_IN) send_ret_submit(seq, 0, (uint32_t)n < len ? (uint32_t)n : len, reply, 0, NULL);
					else send_ret_submit(seq, 0, len, NULL, 0, NULL);
				} else {
					say("URB for endpoint %u", ep);
					send_ret_submit(seq, -EPIPE, 0, NULL, 0, NULL);
				}
			} else if (cmd == CMD_UNLINK) {
				uint32_t victim = be32(h + 20);
				int32_t status = 0;
				for (size_t i = 0; i < qn; i++) {
					if (q[i].seq != victim) continue;
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
		while (qn && now_ns() >= q[0].due) {
			complete_iso(q[0].seq, q[0].np, q[0].iso);
			memmove(q, q + 1, (qn - 1) * sizeof *q);
			qn--;
		}
	}
}

int main(int argc, char **argv)
{
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stderr, NULL, _IOLBF, 0);
	if (argc < 2 || argc % 2 != 0) {
		fprintf(stderr, "usage: usbip-mic SESSION_S [PAUSE_S SESSION_S]...\n");
		return 2;
	}
	for (int a = 1; a < argc; a += 2) {
		if (a > 1) {
			uint64_t pause = strtoull(argv[a - 1], NULL, 10);
			say("unplugged for %llu s", (unsigned long long)pause);
			usleep((useconds_t)(pause * 1000000u));
		}
		session_no++;
		attach();
		serve(now_ns() + strtoull(argv[a], NULL, 10) * 1000000000u);
		detach();
	}
	say("script done");
	return 0;
}
