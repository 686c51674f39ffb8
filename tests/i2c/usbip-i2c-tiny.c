/*
 * usbip-i2c-tiny: test tooling for blackbox's G-sensor test against the kernel's i2c-tiny-usb
 * driver (scripts/qemu/gsensor-test). Runs inside the qemu guest; everything stays in the
 * guest (TCP over its own 127.0.0.1).
 *
 *   usbip-i2c-tiny SCRIPT
 *
 * A USB/IP device on vhci-hcd with i2c-tiny-usb's ids (0403:c631): it answers the driver's
 * vendor control requests (drivers/i2c/busses/i2c-tiny-usb.c: ECHO, GET_FUNC, SET_DELAY,
 * GET_STATUS, I2C_IO with BEGIN/END) so the kernel makes an I2C adapter of it (/dev/i2c-N with
 * i2c-dev), and emulates one accelerometer on that bus, registers and FIFO:
 *
 *   mpu6050  at 0x68: WHO_AM_I 0x68, PWR_MGMT_1 (H_RESET, SLEEP), SMPLRT_DIV + CONFIG (rate),
 *            ACCEL_CONFIG (AFS_SEL), FIFO_EN (accel), USER_CTRL (FIFO_EN, FIFO_RESET),
 *            FIFO_COUNT, FIFO_R_W; 1024-byte FIFO (full: count stays 1024, new samples lost).
 *   lis3dh   at 0x18: WHO_AM_I 0x33, CTRL_REG1 (ODR), CTRL_REG4 (FS, 12-bit high resolution),
 *            CTRL_REG5 (FIFO_EN, BOOT), FIFO_CTRL (bypass/stream), FIFO_SRC (OVRN = 32 stored,
 *            FSS), OUT_X_L..OUT_Z_H with auto-increment (bit 7) wrapping 0x2D -> 0x28 while
 *            the FIFO is on; 32-sample FIFO, stream mode drops the oldest.
 *   Any other address NAKs (i2c-tiny-usb status 2: the kernel returns ENXIO).
 *
 * Samples are made in sample time: sample i of a session exists from t0 + (i + 1) * period,
 * where t0 is when the FIFO was switched on (CLOCK_MONOTONIC of the guest) and period comes
 * from the rate registers; its value is the waveform at (i + 1) * period after t0. So what the
 * reader gets does not depend on when it reads, only on whether the FIFO overflowed.
 *
 * SCRIPT, one command a line (# comments), times in ms of sample time since the session's
 * FIFO start:
 *   chip mpu6050|lis3dh           start a session: attach the adapter with this chip
 *   at MS pulse NAME DUR MG AXIS  add MG milli-g on AXIS (x, y or z) for DUR ms
 *   at MS vibrate NAME DUR MG     add a 15 Hz sine of amplitude MG on every axis for DUR ms
 *   at MS detach                  end the session: unplug (vhci-hcd detach), wait PAUSE ms
 *   at MS end                     end the session and exit
 *   pause MS                      time unplugged between sessions (default 3000)
 * The resting waveform is gravity on a tilted mount (x 100, y -50, z 980 mg) plus +-4 mg of
 * deterministic noise. When a session's FIFO starts, each pulse/vibrate prints
 *   usbip-i2c-tiny: mark NAME chip CHIP sample N mono_ns T
 * with N the first sample inside it and T its sample time (t0 + (N + 1) * period), for the
 * test to compare with the impact blackbox reports.
 *
 * Built static for aarch64 by scripts/qemu/gsensor-test. Test tooling, not part of the product.
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
	fprintf(stderr, "usbip-i2c-tiny: ");
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
	fprintf(stderr, "usbip-i2c-tiny: ");
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

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

/* --- the script ----------------------------------------------------------------------------- */

enum { EV_PULSE, EV_VIBRATE, EV_DETACH, EV_END };
struct event { int kind; double at_ms, dur_ms, mg; int axis; char name[32]; };
struct session { int lis; struct event ev[16]; int nev; double end_ms; int last; };
static struct session sessions[8];
static int nsessions;
static double pause_ms = 3000;

static void load_script(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) die("open %s", path);
	char line[256];
	struct session *s = NULL;
	while (fgets(line, sizeof line, f)) {
		char *h = strchr(line, '#');
		if (h) *h = 0;
		char w[7][32] = { { 0 } };
		int n = sscanf(line, "%31s %31s %31s %31s %31s %31s %31s", w[0], w[1], w[2], w[3], w[4], w[5], w[6]);
		if (n <= 0) continue;
		errno = 0;
		if (!strcmp(w[0], "chip") && n == 2) {
			if (nsessions == 8) die("too many sessions");
			s = &sessions[nsessions++];
			if (!strcmp(w[1], "lis3dh")) s->lis = 1;
			else if (strcmp(w[1], "mpu6050")) die("unknown chip %s", w[1]);
			s->end_ms = -1;
		} else if (!strcmp(w[0], "pause") && n == 2) {
			pause_ms = atof(w[1]);
		} else if (!strcmp(w[0], "at") && n >= 3 && s) {
			if (s->nev == 16) die("too many events");
			struct event *e = &s->ev[s->nev];
			e->at_ms = atof(w[1]);
			if (!strcmp(w[2], "pulse") && n == 7) {
				e->kind = EV_PULSE;
				snprintf(e->name, sizeof e->name, "%s", w[3]);
				e->dur_ms = atof(w[4]); e->mg = atof(w[5]);
				e->axis = w[6][0] == 'x' ? 0 : w[6][0] == 'y' ? 1 : 2;
				s->nev++;
			} else if (!strcmp(w[2], "vibrate") && n == 6) {
				e->kind = EV_VIBRATE;
				snprintf(e->name, sizeof e->name, "%s", w[3]);
				e->dur_ms = atof(w[4]); e->mg = atof(w[5]);
				s->nev++;
			} else if (!strcmp(w[2], "detach") && n == 3) {
				s->end_ms = e->at_ms;
			} else if (!strcmp(w[2], "end") && n == 3) {
				s->end_ms = e->at_ms; s->last = 1;
			} else die("bad line: %s", line);
		} else die("bad line: %s", line);
	}
	fclose(f);
	if (!nsessions) die("%s: no session", path);
	for (int i = 0; i < nsessions; i++)
		if (sessions[i].end_ms < 0) die("session %d has no detach/end", i + 1);
	sessions[nsessions - 1].last = 1;
}

/* --- the chip ------------------------------------------------------------------------------- */

static struct session *cur;
static int cur_index;
static uint8_t regs[256];
static uint8_t ptr;              /* register pointer */
static int started;              /* FIFO running; t0 set */
static uint64_t t0, period_ns;
static uint64_t generated;       /* samples made so far this session */
static uint8_t fifo[1024 * 6];   /* MPU: bytes; LIS: 6-byte frames */
static size_t fifo_len;          /* bytes */
static size_t lost;              /* samples dropped (MPU full) or overwritten (LIS stream) */
static uint32_t noise = 12345;
static uint8_t status_byte;      /* i2c-tiny-usb status of the last I2C_IO */
#define ADDR (cur->lis ? 0x18 : 0x68)

static void chip_reset(void)
{
	memset(regs, 0, sizeof regs);
	if (cur->lis) {
		regs[0x0f] = 0x33;
		regs[0x2f] = 0x20;       /* FIFO_SRC: empty */
	} else {
		regs[0x75] = 0x68;
		regs[0x6b] = 0x40;       /* PWR_MGMT_1: SLEEP */
	}
	fifo_len = 0;
}

/* The waveform in mg at `ms` of sample time. */
static void wave(double ms, double mg[3])
{
	mg[0] = 100; mg[1] = -50; mg[2] = 980;
	for (int k = 0; k < 3; k++) {
		noise = noise * 1103515245u + 12345u;
		mg[k] += ((double)((noise >> 16) & 0x7fff) / 32767.0 - 0.5) * 8.0;
	}
	for (int i = 0; i < cur->nev; i++) {
		const struct event *e = &cur->ev[i];
		if (ms < e->at_ms || ms >= e->at_ms + e->dur_ms) continue;
		if (e->kind == EV_PULSE) mg[e->axis] += e->mg;
		if (e->kind == EV_VIBRATE)
			for (int k = 0; k < 3; k++) mg[k] += e->mg * sin(2 * M_PI * 15.0 * (ms - e->at_ms) / 1000.0 + k);
	}
}

static int16_t clamp16(double v) { return v > 32767 ? 32767 : v < -32768 ? -32768 : (int16_t)lrint(v); }

/* One sample as the chip stores it. */
static void encode(const double mg[3], uint8_t out[6])
{
	for (int k = 0; k < 3; k++) {
		if (cur->lis) {
			static const double sens[4] = { 1, 2, 4, 12 };   /* mg/digit, high resolution */
			int fs = (regs[0x23] >> 4) & 3;
			double d = mg[k] / sens[fs];
			if (d > 2047) d = 2047;
			if (d < -2048) d = -2048;
			int16_t v = (int16_t)(lrint(d) * 16);
			out[2 * k] = (uint8_t)v; out[2 * k + 1] = (uint8_t)((uint16_t)v >> 8);
		} else {
			int afs = (regs[0x1c] >> 3) & 3;
			int16_t v = clamp16(mg[k] / 1000.0 * (16384 >> afs));
			out[2 * k] = (uint8_t)((uint16_t)v >> 8); out[2 * k + 1] = (uint8_t)v;
		}
	}
}

static uint64_t rate_period(void)
{
	if (cur->lis) {
		static const int odr[10] = { 0, 1, 10, 25, 50, 100, 200, 400, 1600, 1344 };
		int o = regs[0x20] >> 4;
		return o >= 1 && o <= 9 ? 1000000000u / (uint64_t)odr[o] : 0;
	}
	int dlpf = regs[0x1a] & 7;
	uint64_t base = dlpf == 0 || dlpf == 7 ? 8000 : 1000;
	return 1000000000ull * (1u + regs[0x19]) / base;   /* 64-bit: 1e9 x 10 overflows 32 bits */
}

static void fifo_start(void)
{
	t0 = now_ns();
	period_ns = rate_period();
	started = 1;
	generated = 0;
	fifo_len = 0;
	say("session %d (%s): FIFO started at mono_ns %llu, period %llu ns", cur_index + 1,
	    cur->lis ? "lis3dh" : "mpu6050", (unsigned long long)t0, (unsigned long long)period_ns);
	for (int i = 0; i < cur->nev; i++) {
		const struct event *e = &cur->ev[i];
		uint64_t at = (uint64_t)(e->at_ms * 1e6);
		uint64_t n = (at + period_ns - 1) / period_ns;   /* first (i + 1) * period >= at */
		n = n ? n - 1 : 0;
		say("mark %s chip %s sample %llu mono_ns %llu", e->name, cur->lis ? "lis3dh" : "mpu6050",
		    (unsigned long long)n, (unsigned long long)(t0 + (n + 1) * period_ns));
	}
}

static int fifo_on(void)
{
	if (cur->lis) return (regs[0x24] & 0x40) && (regs[0x2e] >> 6) != 0;
	return (regs[0x6a] & 0x40) && (regs[0x23] & 0x08);
}

/* Makes every sample due by now. */
static void produce(void)
{
	if (!started) return;
	uint64_t now = now_ns();
	uint64_t due = (now - t0) / period_ns;
	if (due > generated + 100000) generated = due - 100000;
	for (; generated < due; generated++) {
		double mg[3];
		uint8_t s[6];
		wave((double)(generated + 1) * (double)period_ns / 1e6, mg);
		encode(mg, s);
		if (!fifo_on()) continue;
		size_t cap = cur->lis ? 32 * 6 : 1024;
		if (fifo_len + 6 > cap) {
			lost++;
			if (!cur->lis) { fifo_len = 1024; continue; }   /* MPU: full, stays full */
			memmove(fifo, fifo + 6, fifo_len - 6);           /* LIS stream: drop the oldest */
			fifo_len -= 6;
		}
		memcpy(fifo + fifo_len, s, 6);
		fifo_len += 6;
	}
}

static void reg_write(uint8_t reg, uint8_t v)
{
	if (cur->lis) {
		if (reg == 0x24 && (v & 0x80)) { v &= 0x7f; }          /* BOOT self-clears */
		regs[reg] = v;
		if (reg == 0x2e && (v >> 6) == 0) fifo_len = 0;        /* bypass empties the FIFO */
	} else {
		if (reg == 0x6b && (v & 0x80)) { chip_reset(); return; }  /* H_RESET */
		if (reg == 0x6a && (v & 0x04)) { produce(); fifo_len = 0; v &= ~0x04; }
		regs[reg] = v;
	}
	if (!started && fifo_on() && rate_period() && !(!cur->lis && (regs[0x6b] & 0x40))) fifo_start();
}

static uint8_t reg_read(uint8_t reg)
{
	if (cur->lis) {
		if (reg == 0x2f) {
			size_t n = fifo_len / 6;
			return (uint8_t)((n >= 32 ? 0x40 : 0) | (n == 0 ? 0x20 : 0) | (n > 31 ? 31 : n));
		}
		return regs[reg];
	}
	if (reg == 0x72) return (uint8_t)(fifo_len >> 8);
	if (reg == 0x73) return (uint8_t)fifo_len;
	return regs[reg];
}

static uint8_t last_sample[6];

/* An I2C message to the chip. Returns 0, or -1 for a NAK. */
static int i2c_io(int rd, uint16_t addr, uint8_t *buf, size_t len)
{
	if (addr != ADDR) return -1;
	produce();
	if (!rd) {
		if (!len) return 0;
		ptr = buf[0];
		int inc = !cur->lis || (ptr & 0x80);
		if (cur->lis) ptr &= 0x7f;
		for (size_t i = 1; i < len; i++) {
			reg_write(ptr, buf[i]);
			if (inc) ptr++;
		}
		if (cur->lis && inc) ptr |= 0x80;   /* remembered for the read that follows */
		return 0;
	}
	int inc = !cur->lis || (ptr & 0x80);
	uint8_t r = cur->lis ? ptr & 0x7f : ptr;
	int lis_fifo = cur->lis && (regs[0x24] & 0x40) && (regs[0x2e] >> 6);
	for (size_t i = 0; i < len; i++) {
		if (!cur->lis && r == 0x74) {                       /* FIFO_R_W: pops, no increment */
			if (fifo_len) { buf[i] = fifo[0]; memmove(fifo, fifo + 1, --fifo_len); }
			else buf[i] = 0;
			continue;
		}
		if (cur->lis && r >= 0x28 && r <= 0x2d) {
			if (r == 0x28 && lis_fifo && fifo_len >= 6) {   /* next sample from the FIFO */
				memcpy(last_sample, fifo, 6);
				memmove(fifo, fifo + 6, fifo_len - 6);
				fifo_len -= 6;
			}
			buf[i] = last_sample[r - 0x28];
			if (inc) r = r == 0x2d && lis_fifo ? 0x28 : r + 1;
			continue;
		}
		buf[i] = reg_read(r);
		if (inc) r++;
	}
	ptr = cur->lis ? (uint8_t)(r | (inc ? 0x80 : 0)) : r;
	return 0;
}

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

/* i2c-tiny-usb: vendor class device 0403:c631, bcdDevice 1.04, one interface, no endpoints. */
static const uint8_t dev_desc[18] = {
	18, USB_DT_DEVICE, 0x00, 0x02, 0xff, 0x00, 0x00, 64,
	0x03, 0x04, 0x31, 0xc6, 0x04, 0x01, 1, 2, 0, 1,
};
static const uint8_t cfg_desc[18] = {
	9, USB_DT_CONFIG, 18, 0, 1, 1, 0, 0x80, 50,
	9, USB_DT_INTERFACE, 0, 0, 0, 0xff, 0, 0, 0,
};

static size_t string_desc(int idx, uint8_t *out)
{
	const char *s;
	switch (idx) {
	case 0: out[0] = 4; out[1] = USB_DT_STRING; put16le(out + 2, 0x0409); return 4;
	case 1: s = "blackbox"; break;
	case 2: s = "blackbox usbip-i2c-tiny test adapter"; break;
	default: return 0;
	}
	size_t n = strlen(s);
	out[0] = (uint8_t)(2 + 2 * n); out[1] = USB_DT_STRING;
	for (size_t i = 0; i < n; i++) put16le(out + 2 + 2 * i, (uint8_t)s[i]);
	return 2 + 2 * n;
}

static size_t ios;   /* I2C messages served */

/* A control transfer. Returns the reply length (IN), 0 (OUT done), -1 (stall). */
static int control(const uint8_t *setup, uint8_t *out, uint32_t out_len, uint8_t *reply)
{
	uint8_t type = setup[0], req = setup[1];
	uint16_t value = setup[2] | setup[3] << 8, index = setup[4] | setup[5] << 8;
	uint16_t length = setup[6] | setup[7] << 8;
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
		case USB_REQ_SET_INTERFACE: case USB_REQ_CLEAR_FEATURE: case USB_REQ_SET_FEATURE: return 0;
		case USB_REQ_GET_INTERFACE: reply[0] = 0; return 1;
		}
		return -1;
	}
	if ((type & USB_TYPE_MASK) == USB_TYPE_VENDOR) {
		switch (req) {
		case 0: put16le(reply, value); return length < 2 ? length : 2;        /* ECHO */
		case 1: reply[0] = 0x09; reply[1] = 0x00; reply[2] = 0xff; reply[3] = 0x0e;   /* GET_FUNC: I2C | SMBUS_EMUL */
			return 4;
		case 2: return 0;                                                       /* SET_DELAY */
		case 3: reply[0] = status_byte; return 1;                              /* GET_STATUS */
		case 4: case 5: case 6: case 7: {                                      /* I2C_IO [BEGIN] [END] */
			int rd = value & 1;
			ios++;
			if (rd) {
				memset(reply, 0xff, length);
				status_byte = i2c_io(1, index, reply, length) ? 2 : 1;
				return length;
			}
			status_byte = i2c_io(0, index, out, out_len) ? 2 : 1;
			return 0;
		}
		}
	}
	say("stall: request %02x %02x value %04x index %04x length %u", type, req, value, index, length);
	return -1;
}

static void send_ret_submit(uint32_t seqnum, int32_t status, uint32_t actual, const uint8_t *data)
{
	uint8_t h[48] = { 0 };
	put32(h, RET_SUBMIT);
	put32(h + 4, seqnum);
	put32(h + 20, (uint32_t)status);
	put32(h + 24, actual);
	write_full(sock, h, sizeof h);
	if (data && actual) write_full(sock, data, actual);
}

static void attach(void)
{
	int other;
	char buf[64];
	tcp_pair(&sock, &other);
	snprintf(buf, sizeof buf, "0 %d %u %d", other, (1u << 16) | 2u, USB_SPEED_HIGH);
	for (int i = 0; sysfs_write("/sys/devices/platform/vhci_hcd.0/attach", buf) < 0; i++) {
		if (i == 100) die("attach to vhci_hcd port 0");
		usleep(100000);   /* the port is freed a little after a detach */
	}
	close(other);
	say("session %d: attached i2c-tiny-usb with a %s at 0x%02x at mono_ns %llu", cur_index + 1,
	    cur->lis ? "lis3dh" : "mpu6050", ADDR, (unsigned long long)now_ns());
}

static void detach(void)
{
	if (sysfs_write("/sys/devices/platform/vhci_hcd.0/detach", "0") < 0) say("detach: %s", strerror(errno));
	close(sock);
	sock = -1;
	say("session %d: detached (unplugged) at mono_ns %llu, sample %llu; %zu samples lost to a full FIFO; %zu I2C messages",
	    cur_index + 1, (unsigned long long)now_ns(), (unsigned long long)generated, lost, ios);
}

/* Serves one session until its end time (sample time). Returns when it ended. */
static void serve(void)
{
	static uint8_t out[65536], reply[65536];
	chip_reset();
	started = 0; generated = 0; lost = 0; ios = 0; status_byte = 0;
	attach();
	uint64_t begun = now_ns();
	for (;;) {
		if (stop) { detach(); exit(0); }
		if (started && now_ns() >= t0 + (uint64_t)(cur->end_ms * 1e6)) return;
		if (!started && now_ns() - begun > 120000000000ull) { errno = 0; die("the FIFO was never switched on (120 s)"); }
		struct pollfd p = { .fd = sock, .events = POLLIN };
		int r = poll(&p, 1, 10);
		if (r < 0 && errno != EINTR) die("poll");
		if (r <= 0) continue;
		uint8_t h[48];
		if (read_full(sock, h, sizeof h) < 0) { errno = 0; die("usbip connection closed"); }
		uint32_t cmd = be32(h), seq = be32(h + 4), dir = be32(h + 12), ep = be32(h + 16);
		if (cmd == CMD_SUBMIT) {
			uint32_t len = be32(h + 24);
			if (len > sizeof out) { errno = 0; die("transfer of %u bytes", len); }
			if (dir == DIR_OUT && len && read_full(sock, out, len) < 0) { errno = 0; die("usbip connection closed"); }
			if (ep != 0) { send_ret_submit(seq, -EPIPE, 0, NULL); continue; }
			int n = control(h + 40, out, dir == DIR_OUT ? len : 0, reply);
			if (n < 0) send_ret_submit(seq, -EPIPE, 0, NULL);
			else if (dir == DIR_IN) send_ret_submit(seq, 0, (uint32_t)n < len ? (uint32_t)n : len, reply);
			else send_ret_submit(seq, 0, len, NULL);
		} else if (cmd == CMD_UNLINK) {
			uint8_t u[48] = { 0 };
			put32(u, RET_UNLINK);
			put32(u + 4, seq);
			write_full(sock, u, sizeof u);
		} else {
			errno = 0; die("unknown usbip command %u", cmd);
		}
	}
}

int main(int argc, char **argv)
{
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stderr, NULL, _IOLBF, 0);
	if (argc != 2) { fprintf(stderr, "usage: usbip-i2c-tiny SCRIPT\n"); return 2; }
	load_script(argv[1]);
	for (cur_index = 0; cur_index < nsessions; cur_index++) {
		cur = &sessions[cur_index];
		serve();
		detach();
		if (cur->last) break;
		say("unplugged for %.0f ms", pause_ms);
		usleep((useconds_t)(pause_ms * 1000));
	}
	say("script done");
	return 0;
}
